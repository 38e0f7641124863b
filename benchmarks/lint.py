"""`llmguard lint` throughput against a naive libcst baseline (issue 5), interleaved, per CPU-second.

Generates a deterministic synthetic corpus (benchmarks/lint_corpus.py: >= 2,000 files, ~11% mentioning
an LLM SDK/tenacity/backoff, median ~150 lines, long tail) in a temp dir. Each repeat runs, in
rotating order:

- naive: libcst parse + QualifiedNameProvider + one equivalent rule (a client constructed without
  timeout=) on every file of a random sample, in this one process, extrapolated to the corpus;
- cold: `llmguard lint` with an empty cache (default --jobs: one worker per CPU) in a fresh process,
  timed around the lint run (imports included, interpreter start-up not);
- warm: the same run again with the cache the cold run left.
Without --quick, the CLI end to end (interpreter start-up included) is timed once, cold and warm.

What the headline ratio measures, plainly: llmguard's text prefilter skips every file no rule can
match before libcst parses anything; on this corpus ~89% of files never mention an SDK, so cold /
naive is mostly the prefilter, not a faster parser or rule engine. It would be far lower on a
corpus where every file mentions an SDK (benchmarks/lint_corpus.py measures real LLM projects).
The naive baseline is one process while llmguard uses a worker per CPU, so the ratio that counts is
per CPU-second (the naive run's own CPU time; llmguard's from `getrusage(RUSAGE_CHILDREN)`, its
whole process and workers, start-up included); the wall-clock ratio is printed beside it. The CPU
per file llmguard actually parsed is also compared with the naive CPU per file.

Targets: cold >= 25x naive per CPU-second; warm >= 10,000 files/s.
Usage: python benchmarks/lint.py [--files N] [--sample N] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402
from lint_corpus import generate  # noqa: E402

_TIMED_RUN = """
import json, sys, time
start = time.perf_counter()
from llmguard.lint.config import load_config
from llmguard.lint.runner import run
result = run([sys.argv[1]], load_config(sys.argv[1]), jobs=int(sys.argv[2]))
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "files": result.files, "parsed": result.parsed, "cached": result.cached,
                  "findings": len(result.findings)}))
"""


def naive_seconds_per_file(paths: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds per file of libcst parse + QualifiedNameProvider + one rule, one process."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, QualifiedNameProvider

    class ClientWithoutTimeout(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (QualifiedNameProvider,)

        def __init__(self) -> None:
            super().__init__()
            self.found = 0

        def visit_Call(self, node: cst.Call) -> None:
            names = {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}
            if names & {"openai.OpenAI", "anthropic.Anthropic"} and not any(
                a.keyword is not None and a.keyword.value == "timeout" for a in node.args
            ):
                self.found += 1

    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        source = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            source = "\n".join("".join(c["source"]) for c in json.loads(source)["cells"] if c["cell_type"] == "code")
        module = cst.parse_module(source)
        MetadataWrapper(module).visit(ClientWithoutTimeout())
    return (time.perf_counter() - start) / len(paths), (time.process_time() - cpu) / len(paths)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(corpus: Path, home: Path, jobs: int) -> dict:
    env = {**os.environ, "LLMGUARD_HOME": str(home)}
    cpu = _children_cpu()
    out = subprocess.run(
        [sys.executable, "-c", _TIMED_RUN, str(corpus), str(jobs)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return {**json.loads(out), "cpu": _children_cpu() - cpu}  # the whole process, imports and start-up included


def cli_run(corpus: Path, home: Path, jobs: int) -> float:
    env = {**os.environ, "LLMGUARD_HOME": str(home)}
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "llmguard.lint",
            "lint",
            str(corpus),
            "--exit-zero",
            "--format",
            "json",
            "-o",
            os.devnull,
            "--jobs",
            str(jobs),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def measure(
    quick: bool = False, files: int = 2500, sample: int | None = None, jobs: int = 0, repeats: int | None = None
) -> Outcome:
    sample = sample or (20 if quick else 120)
    repeats = repeats or 3
    workers = jobs or os.cpu_count() or 1
    out = Outcome("lint")
    with tempfile.TemporaryDirectory(prefix="llmguard-lint-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        stats = generate(corpus, files=max(2000, files))
        paths = sorted(p for p in corpus.rglob("*") if p.suffix in (".py", ".ipynb"))
        print(
            f"corpus: {stats['files']} files ({stats['sdk_files']} = {stats['sdk_files'] / stats['files']:.1%} "
            f"mention an LLM SDK/tenacity/backoff), {stats['total_lines']:,} lines, median {stats['median_lines']} "
            f"lines/file, mean {stats['mean_lines']:.0f}, p99 {stats['p99_lines']}; {os.cpu_count()} CPUs; "
            f"{repeats} repeats, order rotating; naive on the same random sample of {sample} files each repeat"
        )
        results: dict[str, list[dict]] = {"naive": [], "cold": [], "warm": []}
        for turn in range(repeats):
            home = Path(tmp) / f"home{turn}"  # empty: this repeat's cold run fills it for its warm run
            order = rotated(["naive", "cold"], turn)
            for arm in order:
                if arm == "naive":
                    chosen = random.Random(1).sample(paths, min(sample, len(paths)))  # the same files each repeat
                    per_file, cpu_per_file = naive_seconds_per_file(chosen)
                    results["naive"].append({"wall": per_file, "cpu": cpu_per_file})
                else:
                    results["cold"].append(timed_run(corpus, home, jobs))
                    results["warm"].append(timed_run(corpus, home, jobs))
        for cold, warm in zip(results["cold"], results["warm"], strict=True):
            out.check(cold["files"] == len(paths), f"cold run saw {cold['files']} files of {len(paths)}")
            out.check(0 < cold["parsed"] < len(paths), f"cold run parsed {cold['parsed']} files (prefilter?)")
            out.check(
                warm["cached"] == len(paths) and warm["parsed"] == 0,
                f"warm run: {warm['cached']} cache hits, {warm['parsed']} parsed, for {len(paths)} files",
            )
            out.check(
                warm["findings"] == cold["findings"], f"warm {warm['findings']} findings != cold {cold['findings']}"
            )

        wall_ratio, cpu_ratio, parsed_cpu_ratio = [], [], []
        for naive, cold in zip(results["naive"], results["cold"], strict=True):
            wall_ratio.append((cold["files"] / cold["seconds"]) * naive["wall"])
            cpu_ratio.append((cold["files"] / cold["cpu"]) * naive["cpu"])
            parsed_cpu_ratio.append(naive["cpu"] / (cold["cpu"] / cold["parsed"]))
        naive_cpu = median([n["cpu"] for n in results["naive"]])
        cold = results["cold"]
        print(
            f"naive   (libcst + QualifiedNameProvider + 1 rule, 1 process): {1 / median([n['wall'] for n in results['naive']]):8.1f} "
            f"files/s, {1 / naive_cpu:.1f} files per CPU-second (extrapolated: {naive_cpu * len(paths):.0f} CPU-s for the corpus)"
        )
        print(
            f"cold    (empty cache, --jobs {workers}): {median([c['files'] / c['seconds'] for c in cold]):8.1f} files/s, "
            f"{median([c['files'] / c['cpu'] for c in cold]):.1f} files per CPU-second ({median([c['seconds'] for c in cold]):.2f} s, "
            f"{median([c['cpu'] for c in cold]):.2f} CPU-s with start-up; {cold[0]['parsed']} of {len(paths)} files parsed "
            f"after the prefilter, {cold[0]['findings']} findings)"
        )
        warm_rate = [w["files"] / w["seconds"] for w in results["warm"]]
        print(f"warm    (cached re-run): {median(warm_rate):8.1f} files/s {spread(warm_rate)}")
        print(f"ratio   cold / naive by wall clock ({workers} workers against 1 process): {spread(wall_ratio, 'x')}")
        print(
            f"ratio   cold / naive per CPU-second (mostly the prefilter: {cold[0]['parsed']} files parsed): "
            f"{spread(cpu_ratio, 'x')}"
        )
        print(
            f"ratio   naive CPU per file / llmguard CPU per file it parsed (the engine, prefilter aside): "
            f"{spread(parsed_cpu_ratio, 'x')}"
        )
        out.add(Figure("lint cold / naive, per CPU-second (mostly prefilter)", median(cpu_ratio), 25.0, "x", "higher"))
        out.add(
            Figure(f"lint cold / naive, wall clock ({workers} procs vs 1)", median(wall_ratio), None, "x", "higher")
        )
        out.add(Figure("lint naive / llmguard CPU per parsed file", median(parsed_cpu_ratio), None, "x", "higher"))
        out.add(Figure("lint warm (cached re-run)", median(warm_rate), 10_000.0, "files/s", "higher"))

        if quick:
            return out
        cli_home = Path(tmp) / "cli-home"
        cli_cold = cli_run(corpus, cli_home, jobs)
        cli_warm = cli_run(corpus, cli_home, jobs)
        print(
            f"CLI end to end once, interpreter start-up included: cold {len(paths) / cli_cold:.0f} files/s "
            f"({cli_cold:.2f} s), warm {len(paths) / cli_warm:.0f} files/s ({cli_warm:.2f} s)"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2500, help="corpus size (default 2500, at least 2000)")
    parser.add_argument(
        "--sample", type=int, help="files the naive baseline runs on per repeat (default 120; 20 with --quick)"
    )
    parser.add_argument("--jobs", type=int, default=0, help="llmguard --jobs (default 0: one per CPU)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3)")
    return cli(measure, parser, "lint")


if __name__ == "__main__":
    sys.exit(main())
