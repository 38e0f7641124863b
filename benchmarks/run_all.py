"""Every benchmark, one table: each figure measured, its target, and "met" or "missed by X".

Each benchmark runs as its own process (`python benchmarks/NAME.py [--quick] --json FILE`: the guard,
the transport patch and OpenTelemetry's global providers are per process), one after the other so
they do not compete for the CPUs. Its full output goes to a log (`--logs DIR`, default a temp
folder, printed at the end). A benchmark whose validity checks failed (an arm did not do what it
claims) is marked FAIL beside its figures: those figures are not to be trusted.

    python benchmarks/run_all.py [--quick] [--only cache,limiter] [--logs DIR]

A full run takes about 7 minutes on a 2-core machine (more the first time: benchmarks/report.py
builds its 1M-call ledger once and keeps it in the temp folder); --quick takes about 2. Other work on
the machine moves the figures: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _bench import Figure, fmt, load  # noqa: E402


@dataclass(frozen=True)
class Bench:
    name: str
    full: tuple[str, ...] = ()  # extra arguments of a full run
    quick: tuple[str, ...] = ("--quick",)
    timeout_s: float = 600.0
    optional: bool = False  # run only if the script exists (another helper may be writing it)


BENCHES = (
    Bench("overhead"),
    Bench("cache"),
    Bench("cache_store"),
    Bench("otel"),
    Bench("tokens"),
    Bench("import_time"),
    Bench("limiter"),
    Bench("unconfigured_limits"),
    Bench("lint"),
    Bench("report", timeout_s=1800.0),  # the first full run builds the 1M-call ledger
    Bench("team", optional=True),
)
NOT_RUN = {
    "lint_corpus": "needs its corpus of real projects (pip download, network) and semgrep; run it by hand: "
    "python benchmarks/lint_corpus.py",
}


@dataclass
class Result:
    bench: str
    seconds: float
    status: str  # "ok", "FAIL: ...", "did not run: ..."
    figures: list[Figure]
    checks: int = 0


def run_one(bench: Bench, quick: bool, logs: Path) -> Result | None:
    script = HERE / f"{bench.name}.py"
    if not script.exists():
        return None if bench.optional else Result(bench.name, 0.0, "did not run: script missing", [])
    out_json = logs / f"{bench.name}.json"
    out_json.unlink(missing_ok=True)
    log = logs / f"{bench.name}.log"
    argv = [sys.executable, str(script), *(bench.quick if quick else bench.full), "--json", str(out_json)]
    print(f"[{time.strftime('%H:%M:%S')}] {bench.name} ...", end=" ", flush=True)
    started = time.perf_counter()
    try:
        with log.open("w", encoding="utf-8") as sink:
            done = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, timeout=bench.timeout_s)
            code = done.returncode
            if code == 2 and not out_json.exists() and bench.optional:  # a script without --quick/--json
                sink.write("\n--- retried without --quick/--json ---\n")
                sink.flush()
                code = subprocess.run(
                    [sys.executable, str(script)], stdout=sink, stderr=subprocess.STDOUT, timeout=bench.timeout_s
                ).returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s", flush=True)
    if not out_json.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        why = "timed out" if code is None else f"exit {code}"
        status = f"ran, exit {code}, no figures (it writes no --json)" if code == 0 else f"did not run: {why}"
        return Result(bench.name, seconds, status if code == 0 else f"{status}: {tail[0][:160]}", [])
    data = json.loads(out_json.read_text(encoding="utf-8"))
    figures = [Figure(**f) for f in data["figures"]]
    status = "ok" if not data["failures"] else "FAIL: " + "; ".join(data["failures"])
    return Result(bench.name, seconds, status, figures, data["checks"])


def table(results: list[Result]) -> str:
    rows = [("figure", "measured", "target", "verdict")]
    for r in results:
        for f in r.figures:
            verdict = f.verdict() if r.status == "ok" else "FAIL (arms invalid)"
            rows.append((f.name, fmt(f.measured, f.unit), f.target_text(), verdict))
        checks = f"{r.checks} checks passed" if r.status == "ok" else r.status
        rows.append((f"{r.bench}: validity checks ({r.seconds:.0f} s)", "", "", checks))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
        if i == 0:
            lines.append("-" * (sum(widths) + 6 + max(len(r[3]) for r in rows)))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark in its --quick mode")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--logs", type=Path, help="folder for each benchmark's output (default: a temp folder)")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",")} if args.only else None
    benches = [b for b in BENCHES if wanted is None or b.name in wanted]
    if wanted and not benches:
        parser.error(f"--only: none of {sorted(wanted)} in {[b.name for b in BENCHES]}")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="llmguard-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"run_all{' --quick' if args.quick else ''}: before, {load()}; uptime: {uptime()}", flush=True)
    started = time.perf_counter()
    results = [r for b in benches if (r := run_one(b, args.quick, logs)) is not None]
    total = time.perf_counter() - started
    print()
    print(table(results))
    for name, why in NOT_RUN.items():
        if wanted is None or name in wanted:
            print(f"not run: {name}: {why}")
    missed = sum(1 for r in results for f in r.figures if r.status == "ok" and f.met() is False)
    failed = [r.bench for r in results if r.status != "ok"]
    print(
        f"\n{sum(len(r.figures) for r in results)} figures, {missed} targets missed; "
        f"{'validity checks failed or did not run: ' + ', '.join(failed) if failed else 'all validity checks passed'}"
    )
    print(f"total {total / 60:.1f} min; after, {load()}; uptime: {uptime()}")
    print("figures are noisy: other work shares this machine's CPUs (see the load averages above)")
    print(f"logs: {logs}")
    return 1 if failed else 0


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load {os.getloadavg()}"


if __name__ == "__main__":
    sys.exit(main())
