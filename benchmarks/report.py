"""`llmguard report` over a 1,000,000-call ledger: each arm against the 2 s target, and what the rollup costs.

Builds (or reuses, from the system's temp folder) a synthetic ledger: 30 days, four models, eight
features, 200 tenants, 5,000 users, streams, retries, queue waits, cache hits, errors and refusals
in realistic proportions, and one step row per fifth call. Rows go in through the ledger's own
`insert_rows`, 4,096 per transaction, so the rollup is kept exactly as the writer keeps it.

Then runs the command a user runs, as a fresh process each time (startup included), interleaved,
REPEATS times (the order rotating): the default report, `--by feature,model`, `--exact`, and `--format html`. Each run is
checked for what it claims (every call counted in its output; the groups it names; estimates marked
over SAMPLE_ABOVE calls, and not with --exact) before its time counts. Prints the median wall time and CPU time (all threads)
of each arm against the target, with "met" or "missed by X". Also measured, interleaved: what the
rollup costs the ledger's writer per call, and how far the estimated percentiles are from the exact.

    python benchmarks/report.py [--rows 1000000] [--repeats 3] [--keep ledger.sqlite3] [--quick]

--quick uses a 100,000-call ledger (building the 1M one the first time takes minutes; it is kept in the
temp folder and reused).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmguard.ledger import grains, rollup
from llmguard.ledger.connection import connect
from llmguard.ledger.insert import insert_rows
from llmguard.ledger.records import COLUMNS, STEP_COLUMNS, CallEvent, StepRow
from llmguard.ledger.schema import create_tables, ensure_report_indexes
from llmguard.reporting import report
from llmguard.reporting.sampling import SAMPLE_ABOVE

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, rotated  # noqa: E402

DAY = 86400.0
TARGET_S = 2.0
MODELS = ["gpt-4o-mini"] * 10 + ["gpt-4o"] * 5 + ["claude-3-5-haiku-latest"] * 4 + ["gpt-4.1-nano"]
FEATURES = ["document_summary", "support_answer", "classify", "extract", "chat", "search", "translate", "draft"]
BATCH = 4096


def rows(n: int, now: float):
    """Ledger rows (calls, and a step row after every fifth call) from pre-drawn pools, so 1M build fast."""
    rng = random.Random(7)
    latency = [rng.lognormvariate(math.log(800), 0.6) for _ in range(4099)]
    small = [rng.lognormvariate(math.log(150), 0.8) for _ in range(4093)]
    tokens = [int(rng.lognormvariate(math.log(900), 0.7)) for _ in range(4091)]
    template = CallEvent(provider="openai", endpoint="chat.completions")
    base = [getattr(template, c) for c in COLUMNS]
    index = {c: i for i, c in enumerate(COLUMNS)}
    step_index = {c: i for i, c in enumerate(STEP_COLUMNS)}
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
        row[index["tags"]] = None
        yield row
        if h % 5 == 4:  # the step the call ran inside, as step() records it
            step_row = [None] * len(STEP_COLUMNS)
            values = {"step_id": f"step{i:08x}", "ts": row[index["ts"]], "run_id": row[index["run_id"]]}
            values |= {"name": "retrieval", "duration_ms": round(small[(i * 5) % 4093], 3), "over_budget": 0}
            values |= {"calls": 1, "feature": feature, "tenant": row[index["tenant"]], "user": row[index["user"]]}
            for name, value in values.items():
                step_row[step_index[name]] = value
            yield StepRow(step_row)


def build(path: Path, n: int, roll_up: bool = True) -> float:
    """The ledger at `path`, through the writer's own inserts; seconds of CPU it took."""
    cpu = time.process_time()
    conn = connect(path)
    create_tables(conn)
    ensure_report_indexes(conn)
    rollup.ensure_rollup(conn)
    batch: list[list] = []
    for row in rows(n, time.time()):  # ending now: the report's alerts look at the last hour
        batch.append(row)
        if len(batch) >= BATCH:
            insert_rows(conn, batch, roll_up)
            batch = []
    if batch:
        insert_rows(conn, batch, roll_up)
    if roll_up:
        rollup.backfill(conn)  # the last few thousand, as the next commit would
    conn.close()
    return time.process_time() - cpu


def cached_ledger(n: int, keep: str | None) -> tuple[Path, str]:
    """A ledger of n calls fully rolled up: `keep`, or one cached in the temp folder for this rollup version."""
    if keep:
        path = Path(keep)
    else:
        folder = Path(tempfile.gettempdir()) / "llmguard-bench-report" / f"{n}-rollup{rollup.VERSION}-steps"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ledger.sqlite3"
    if path.exists():
        conn = sqlite3.connect(path)
        try:
            mark, steps = rollup.watermark(conn), rollup.watermark(conn, "steps")
            calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            current = all(rollup.has_table(conn, g.table) for g in grains.GRAINS)
        finally:
            conn.close()
        if current and mark is not None and mark.usable and mark.rows == calls == n and steps is not None:
            conn = connect(path)  # as the writer's next open would: the reports' indexes of this release
            try:
                ensure_report_indexes(conn)
            finally:
                conn.close()
            return path, f"reused {path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    seconds = build(path, n)
    return path, f"built {n:,} calls in {seconds:.0f} CPU-s ({path.stat().st_size / 1e6:.0f} MB) at {path}"


def write_cost(n: int = 60_000, repeats: int = 3) -> tuple[float, float]:
    """CPU per call of the ledger's commits with and without the rollup, interleaved (µs)."""
    with_rollup, without = [], []
    for _ in range(repeats):
        for roll_up, into in ((False, without), (True, with_rollup)):
            with tempfile.TemporaryDirectory() as folder:
                into.append(build(Path(folder) / "ledger.sqlite3", n, roll_up) / n * 1e6)
    return statistics.median(without), statistics.median(with_rollup)


ARMS = {
    "default": [],
    "--by feature,model": ["--by", "feature,model"],
    "--exact": ["--exact"],
    "--format html": ["--format", "html"],
}


def run_arm(home: Path, arm: str, out: Path) -> tuple[float, float, str]:
    """One `llmguard report` as a fresh process: (wall s, CPU s of the process, its output)."""
    argv = [sys.executable, "-m", "llmguard.cli", "report", "--home", str(home), *ARMS[arm]]
    if arm == "--format html":
        argv += ["--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        return wall, cpu, f"exit {done.returncode}: {done.stderr}"
    return wall, cpu, out.read_text(encoding="utf-8") if arm == "--format html" else done.stdout


def check(arm: str, output: str, n: int) -> list[str]:
    """The arm did its work: every call counted, the groups named, estimates marked (not with --exact)."""
    problems = []
    if f"{n:,} calls" not in output:
        problems.append(f"no '{n:,} calls'")
    if arm == "--by feature,model" and not all(f in output for f in FEATURES):
        problems.append("a feature is missing")
    if arm in ("default", "--by feature,model") and n > SAMPLE_ABOVE and "≈" not in output:
        problems.append("estimates are not marked")
    if arm == "--exact" and "≈" in output:
        problems.append("--exact still estimated")
    if arm == "--format html" and 'data-table="breakdown"' not in output:
        problems.append("no breakdown table")
    return problems


def in_process(path: Path) -> list[str]:
    """Reports over part of the range, with alerts, at the ledger's last call (the CLI arms run at the
    wall clock's time, so their alerts see an empty last hour once the cached ledger is an hour old)."""
    from llmguard.config import Settings
    from llmguard.reporting import alerts

    now = (report.span(path, report.Filters())[1] or time.time()) + 1
    settings = Settings(budget_usd=50.0, quotas={"tenant:tenant-7": {"usd_per_day": 1.0}})
    thresholds = alerts.load_thresholds()
    lines = []
    for label, since, by in (
        ("all calls", None, "model"),
        ("--since 24h", "24h", "feature"),
        ("--since 7d", "7d", "model"),
    ):
        made = report.make_filters(path, since=since, now=now)
        started, cpu = time.perf_counter(), time.process_time()
        rep = report.build_report(
            path, by, made, alerts=lambda m=made: alerts.evaluate(path, m, settings, thresholds, now)
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        lines.append(f"  {label:<12} --by {by:<8} {wall:5.2f} s wall {cpu:5.2f} s CPU ({rep.total['calls']:,} calls)")
    return lines


def verdict(seconds: float) -> str:
    return "met" if seconds <= TARGET_S else f"missed by {seconds - TARGET_S:.2f} s"


def accuracy(path: Path) -> str:
    """How far the estimated percentiles of the full range are from the exact ones (relative, worst)."""
    worst: dict[str, float] = {}
    for by in ("model", "feature,model"):
        estimated, exact = report.breakdown(path, by), report.breakdown(path, by, exact=True)
        for a, b in zip(estimated, exact, strict=True):
            for k in a:
                if k.endswith("_ms") and a[k] and b[k]:
                    q = k.rsplit("p", 1)[-1].split("_")[0]
                    worst[q] = max(worst.get(q, 0.0), abs(a[k] - b[k]) / b[k])
    return ", ".join(f"p{q} {worst.get(str(q), 0.0):.2%}" for q in report.QUANTILES)


def measure(
    quick: bool = False, rows: int | None = None, repeats: int | None = None, keep: str | None = None
) -> Outcome:
    rows = rows or (100_000 if quick else 1_000_000)
    repeats = repeats or 3
    out = Outcome("report")
    path, how = cached_ledger(rows, keep)
    print(how)
    print(f"on {os.cpu_count()} CPU(s), SQLite {sqlite3.sqlite_version}, load {os.getloadavg()[0]:.2f}")
    times: dict[str, list[tuple[float, float]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as scratch:
        report_out = Path(scratch) / "report.html"
        for turn in range(repeats):  # interleaved: each repeat runs every arm once, the order rotating
            for arm in rotated(list(ARMS), turn):
                wall, cpu, output = run_arm(path.parent, arm, report_out)
                problems = check(arm, output, rows)
                out.check(not problems, f"{arm} did not do its work: {'; '.join(problems)}: {output[:300]!r}")
                times[arm].append((wall, cpu))
    print(f"\n`llmguard report` over {rows:,} calls, fresh process each run, median of {repeats}:")
    print(f"  {'arm':<20} {'wall s':>7} {'(min-max)':>13} {'CPU s':>6}   target {TARGET_S:.0f} s")
    for arm, runs in times.items():
        walls = [w for w, _ in runs]
        wall, cpu = statistics.median(walls), statistics.median(c for _, c in runs)
        spread = f"({min(walls):.2f}-{max(walls):.2f})"
        print(f"  {arm:<20} {wall:7.2f} {spread:>13} {cpu:6.2f}   {verdict(wall)}")
        out.add(Figure(f"report {arm} over {rows:,} calls (wall)", wall, TARGET_S, "s"))
    print(f"  estimated percentiles vs exact, worst relative error: {accuracy(path)}")
    print("\nin process, whole report with alerts (budget and a tenant quota), at the ledger's last call:")
    print("\n".join(in_process(path)))
    n = 10_000 if quick else 60_000
    without, with_rollup = write_cost(n)
    print(
        f"\nledger writer CPU per call ({n:,} calls in commits of {BATCH:,}, median of 3, interleaved): {without:.1f} µs "
        f"without the rollup, {with_rollup:.1f} µs with it (+{with_rollup - without:.1f} µs)"
    )
    out.add(Figure("report: rollup added to the writer's CPU/call", with_rollup - without, None, "µs"))
    conn = sqlite3.connect(path)
    sizes = {g.name: conn.execute(f"SELECT COUNT(*) FROM {g.table}").fetchone()[0] for g in rollup.GRAINS}
    conn.close()
    print("rollup rows per grain: " + json.dumps(sizes))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="ledger size (default 1,000,000; 100,000 with --quick)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of every arm (default 3)")
    parser.add_argument("--keep", help="build (or reuse) the ledger at this path")
    return cli(measure, parser, "report")


if __name__ == "__main__":
    sys.exit(main())
