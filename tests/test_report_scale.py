"""What a report costs does not grow with the span it covers or the calls it holds.

No timings here (speed is measured in benchmarks/report.py): what is checked is what a report reads
or allocates, which is what made it slow.
"""

from __future__ import annotations

import tracemalloc

from llmguard.reporting.dashboard import Timeline
from llmguard.reporting.html_charts import spend_chart, time_ticks

MONTH = 30 * 86400


def test_the_time_axis_of_a_month_is_counted_not_listed():
    # the axis looked at every round step, one second included: a list of 2.6 million ticks for a month
    start = 1_789_948_800.0
    tracemalloc.start()
    try:
        ticks, step = time_ticks(start, start + MONTH)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a tick a week, on whole weeks since 1970 (Thursdays, 00:00 UTC)
    assert (ticks, step) == ([1790208000.0, 1790812800.0, 1791417600.0, 1792022400.0], 7 * 86400)
    assert peak < 100_000, f"{peak:,} bytes to place four ticks"


def test_a_spend_chart_over_a_month_draws_in_little_memory():
    start = 1_789_948_800
    tl = Timeline(bucket_s=43200, first=start // 43200, slots=60, by="model")
    tl.buckets = {
        start // 43200 + i: {"cost_usd": 0.1 * i, "calls": i, "by": {"gpt-4o-mini": 0.1 * i}} for i in range(60)
    }
    tracemalloc.start()
    try:
        svg = spend_chart(tl)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert svg.count('class="bar"') == 59  # the first bucket cost nothing
    assert peak < 1_000_000, f"{peak:,} bytes for a 60-bar chart"
