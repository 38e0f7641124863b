"""Reports and alerts over a 1,000,000-call ledger: how long the JSON report and the alerts take.

Builds a synthetic ledger (30 days, four models, eight features, 200 tenants, streams, retries,
queue waits, cache hits and user steps in realistic proportions) with one executemany in one
transaction, then times each report the way `llmguard report` runs it. Target: a few seconds.
Everything is aggregated in SQL on the ledger's own two indexes (ts, run_id). Over the full range,
percentiles come from a deterministic sample (see llmguard.reporting.sampling.SAMPLE_ABOVE); the same report
with --exact is timed beside it, and the sample's error against the exact figures is printed.

    python benchmarks/report.py [--rows 1000000] [--keep ledger.sqlite3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from llmguard.config import Settings
from llmguard.ledger.connection import connect
from llmguard.ledger.records import COLUMNS, CallEvent
from llmguard.ledger.schema import CALL_INDEXES as _INDEXES
from llmguard.ledger.schema import CREATE_CALLS as _CREATE
from llmguard.ledger.schema import INSERT_CALL as _INSERT
from llmguard.reporting import alerts, report

DAY = 86400.0
MODELS = ["gpt-4o-mini"] * 10 + ["gpt-4o"] * 5 + ["claude-3-5-haiku-latest"] * 4 + ["gpt-4.1-nano"]
FEATURES = ["document_summary", "support_answer", "classify", "extract", "chat", "search", "translate", "draft"]


def rows(n: int, now: float):
    """Ledger rows as tuples in column order; values come from pre-drawn pools so 1M rows build fast."""
    rng = random.Random(7)
    latency = [rng.lognormvariate(math.log(800), 0.6) for _ in range(4099)]
    small = [rng.lognormvariate(math.log(150), 0.8) for _ in range(4093)]
    tokens = [int(rng.lognormvariate(math.log(900), 0.7)) for _ in range(4091)]
    template = CallEvent(provider="openai", endpoint="chat.completions")
    base = [getattr(template, c) for c in COLUMNS]
    index = {c: i for i, c in enumerate(COLUMNS)}
    start, step = now - 30 * DAY, 30 * DAY / n
    for i in range(n):
        row = list(base)
        h = (i * 2654435761) & 0xFFFFFFFF  # a cheap, well-mixed per-row hash
        model = MODELS[h % len(MODELS)]
        feature = FEATURES[(h >> 5) % len(FEATURES)]
        total = latency[i % 4099]
        row[index["request_id"]] = f"bench{i:08x}"
        row[index["ts"]] = start + i * step
        row[index["run_id"]] = f"run-{i // 5000:04d}"
        row[index["provider"]] = "anthropic" if model.startswith("claude") else "openai"
        row[index["model"]] = row[index["requested_model"]] = model
        row[index["feature"]] = feature
        row[index["prompt_version"]] = f"{feature}-v{1 + i * 3 // n}"
        row[index["tenant"]] = f"tenant-{(h >> 9) % 200}"
        row[index["user"]] = f"user-{(h >> 12) % 5000}"
        if h % 10 < 3:
            row[index["notebook"]], row[index["cell"]] = "analysis.ipynb", (h >> 3) % 40
        roll = (h >> 16) % 1000
        cache_hit = roll < 150
        row[index["input_tokens"]] = tokens[i % 4091]
        row[index["output_tokens"]] = tokens[(i * 7) % 4091] // 5
        row[index["cost_usd"]] = (
            0.0 if cache_hit else row[index["input_tokens"]] * 2.5e-6 + row[index["output_tokens"]] * 1e-5
        )
        row[index["cache_hit"]] = int(cache_hit)
        row[index["saved_usd"]] = 0.004 if cache_hit else None
        row[index["dedup_hit"]] = int(150 <= roll < 160)
        if 970 <= roll < 985:
            row[index["status"]], row[index["error_type"]] = "error", "timeout" if roll % 2 else "http_503"
        elif 985 <= roll < 995:
            row[index["status"]], row[index["error_type"]], row[index["decision"]] = "refused", "rate_limit", "reject"
        if roll % 25 == 1:
            row[index["retry_count"]], row[index["retry_delay_ms"]] = 1, 500.0
        row[index["fallback_used"]] = int(roll % 100 == 2)
        row[index["queue_ms"]] = small[i % 4093] if roll % 10 == 3 else 0.0
        row[index["model_ms"]] = total * 0.9
        row[index["total_ms"]] = total + row[index["queue_ms"]] + row[index["retry_delay_ms"]]
        if h % 5 < 2:
            row[index["stream"]], row[index["ttft_ms"]] = 1, small[(i * 3) % 4093]
        row[index["steps"]] = (
            json.dumps({"retrieval": round(small[(i * 5) % 4093], 3), "validation": 12.5}) if h % 5 == 4 else None
        )
        row[index["tags"]] = None
        yield row


def build(path: Path, n: int, now: float) -> float:
    started = time.perf_counter()
    conn = connect(path)
    conn.execute(_CREATE)
    for statement in _INDEXES:
        conn.execute(statement)
    conn.execute("BEGIN")
    conn.executemany(_INSERT, rows(n, now))
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def timed(label: str, fn) -> float:
    """Wall time, and CPU time summed over the scans that ran in parallel threads."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = f"{len(result):,} bytes" if isinstance(result, str) else f"{len(result)} alert(s)"
    print(f"  {label:<44} {seconds:6.2f} s wall {cpu:6.2f} s CPU   ({size})")
    return seconds


def accuracy(path: Path) -> None:
    """How far the sampled percentiles of the full range are from the exact ones (relative)."""
    worst: dict[str, float] = {}
    for by in ("model", "feature,model"):
        sampled, exact = report.breakdown(path, by), report.breakdown(path, by, exact=True)
        for a, b in zip(sampled, exact, strict=True):
            pairs = [(k, a[k], b[k]) for k in a if k.endswith("_ms") and a[k] and b[k]]
            pairs += [
                (f"step p{q}", a["steps"][s][f"p{q}_ms"], b["steps"][s][f"p{q}_ms"])
                for s in a["steps"]
                for q in report.QUANTILES
            ]
            for name, got, want in pairs:
                quantile = name.rsplit("p", 1)[-1].split("_")[0]
                worst[quantile] = max(worst.get(quantile, 0.0), abs(got - want) / want)
    print(
        "  sampled percentiles vs exact, worst relative error over every group and figure: "
        + ", ".join(f"p{q} {worst.get(str(q), 0.0):.1%}" for q in report.QUANTILES)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="build (or reuse) the ledger at this path instead of a temporary one")
    args = parser.parse_args()
    now = time.time()
    folder = tempfile.TemporaryDirectory()
    path = Path(args.keep) if args.keep else Path(folder.name) / "ledger.sqlite3"
    if not path.exists():
        seconds = build(path, args.rows, now)
        print(f"built {args.rows:,} calls in {seconds:.1f} s ({path.stat().st_size / 1e6:.0f} MB) at {path}")
    else:
        last = report.span(path, report.Filters())[1]
        now = (last or now) + 1
    print(f"on {os.cpu_count()} CPU(s), SQLite {__import__('sqlite3').sqlite_version}:")
    settings = Settings(
        limits={"gpt-4o-mini": {"rpm": 500, "tpm": 200_000}},
        budget_usd=50.0,
        quotas={"tenant:tenant-7": {"usd_per_day": 1.0}},
    )
    thresholds = alerts.load_thresholds()

    def json_report(by: str, exact: bool = False, **filters) -> str:
        made = report.make_filters(path, now=now, **filters)
        rep = report.build_report(
            path, by, made, alerts=lambda: alerts.evaluate(path, made, settings, thresholds, now), exact=exact
        )
        return report.to_json(rep.to_dict())

    for by in ("model", "feature,model"):
        sampled = timed(f"JSON report, all calls, --by {by}", lambda by=by: json_report(by))
        exact = timed("  the same with --exact (sorts every call)", lambda by=by: json_report(by, exact=True))
        print(f"  {'':<44} sampled/exact time: {sampled / exact:.2f}x")
    accuracy(path)
    timed("JSON report, --since 24h --by feature", lambda: json_report("feature", since="24h"))
    timed("JSON report, --last-run --by model", lambda: json_report("model", last_run=True))
    made = report.make_filters(path, now=now)
    timed("alerts (last hour vs the hour before)", lambda: alerts.evaluate(path, made, settings, thresholds, now))
    made = report.make_filters(path, since="7d", now=now)
    timed("alerts (--since 7d vs the 7 days before)", lambda: alerts.evaluate(path, made, settings, thresholds, now))
    from llmguard.reporting.html import report_html

    timed("HTML report, --since 24h", lambda: report_html(path, since="24h", settings=settings, now=now))
    folder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
