"""`llmguard.reporting.report`: the names the demo, the magics, benchmarks and older callers know the
reports by, gathered from the modules that own them (nothing in reporting imports this module).

Where each lives: time parsing in `timerange`, what a report covers in `filters`, ledger access in
`db`, breakdowns in `queries`, steps in `steps`, percentiles in `percentiles`, sampling in
`sampling`, spend and cost drivers in `costs`, JSON/CSV/JSONL in `exports`, the whole report in
`build`, the terminal table in `terminal`, HTML in `html`.
The sampling thresholds (SAMPLE_ABOVE, ...) are `sampling`'s: set them there.
"""

from __future__ import annotations

from llmguard.reporting.build import Report, build_report
from llmguard.reporting.costs import (
    DRIVER_DIMENSIONS,
    bucket_size,
    cost_by,
    drivers_from_sample,
    span,
    spend_over_time,
    top_cost_drivers,
)
from llmguard.reporting.db import (
    check_readable,
    has_calls_table,
    has_steps_table,
    last_run_id,
    query,
    run_parallel,
    unreadable,
)
from llmguard.reporting.errors import ReportError
from llmguard.reporting.exports import csv_cell, flatten, iter_events, to_csv, to_json
from llmguard.reporting.filters import (
    DIMENSIONS,
    GROUPABLE,
    STEP_DIMENSIONS,
    Filters,
    make_filters,
    parse_by,
    steps_apply,
)
from llmguard.reporting.html import report_html
from llmguard.reporting.percentiles import QUANTILES, rank
from llmguard.reporting.queries import DEFAULT_LATENCIES, LATENCIES, breakdown, summary, totals
from llmguard.reporting.sampling import sample_thresholds
from llmguard.reporting.steps import step_figures
from llmguard.reporting.terminal import to_table
from llmguard.reporting.timerange import parse_duration, parse_time

_drivers_from_sample = drivers_from_sample  # its name before it became public (tests call it)

__all__ = [
    "DEFAULT_LATENCIES",
    "DIMENSIONS",
    "DRIVER_DIMENSIONS",
    "GROUPABLE",
    "LATENCIES",
    "QUANTILES",
    "STEP_DIMENSIONS",
    "Filters",
    "Report",
    "ReportError",
    "breakdown",
    "bucket_size",
    "build_report",
    "check_readable",
    "cost_by",
    "csv_cell",
    "flatten",
    "has_calls_table",
    "has_steps_table",
    "iter_events",
    "last_run_id",
    "make_filters",
    "parse_by",
    "parse_duration",
    "parse_time",
    "query",
    "rank",
    "report_html",
    "run_parallel",
    "sample_thresholds",
    "span",
    "spend_over_time",
    "step_figures",
    "steps_apply",
    "summary",
    "to_csv",
    "to_json",
    "to_table",
    "top_cost_drivers",
    "totals",
    "unreadable",
]
