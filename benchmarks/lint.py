"""`llmguard lint` throughput against the naive libcst baseline (issue 5), ratios measured in one run.

Generates a deterministic corpus (benchmarks/lint_corpus.py: >= 2,000 files, ~11% mentioning an LLM
SDK/tenacity/backoff, median ~150 lines, long tail) in a temp dir, then prints:

- naive: libcst parse + QualifiedNameProvider + one equivalent rule (a client constructed without
  timeout=) per file, one process. It is slow, so it runs on a random sample of the files and is
  extrapolated to the whole corpus (said so in the output);
- cold: `llmguard lint` with an empty cache (default --jobs: one worker per CPU), in a fresh
  process, timed around the lint run itself (module imports included, interpreter start-up not);
- warm: the same run again with the cache from the cold run;
- the same two runs end to end through the CLI (`python -m llmguard.lint lint ...`), interpreter
  start-up included.

The naive baseline runs in one process while llmguard uses a worker per CPU, so every rate is also
given per CPU-second (the naive run's own CPU time; llmguard's from `getrusage(RUSAGE_CHILDREN)`,
which counts its workers), and the ratio both ways. The real-code benchmark, side by side with
semgrep, is benchmarks/lint_corpus.py.

Targets: cold >= 25x naive; warm >= 10,000 files/s. Usage: python benchmarks/lint.py [--files N] [--sample N]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2500, help="corpus size (default 2500, at least 2000)")
    parser.add_argument("--sample", type=int, default=250, help="files the naive baseline runs on (default 250)")
    parser.add_argument("--jobs", type=int, default=0, help="llmguard --jobs (default 0: one per CPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmguard-lint-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        stats = generate(corpus, files=max(2000, args.files))
        paths = sorted(p for p in corpus.rglob("*") if p.suffix in (".py", ".ipynb"))
        print(
            f"corpus: {stats['files']} files ({stats['sdk_files']} = {stats['sdk_files'] / stats['files']:.1%} "
            f"mention an LLM SDK/tenacity/backoff), {stats['total_lines']:,} lines, median {stats['median_lines']} "
            f"lines/file, mean {stats['mean_lines']:.0f}, p99 {stats['p99_lines']}; {os.cpu_count()} CPUs"
        )

        sample = random.Random(1).sample(paths, min(args.sample, len(paths)))
        per_file, cpu_per_file = naive_seconds_per_file(sample)
        naive_rate, naive_cpu_rate = 1 / per_file, 1 / cpu_per_file
        print(
            f"naive   (libcst parse + QualifiedNameProvider + 1 rule, 1 process): {naive_rate:8.1f} files/s, "
            f"{naive_cpu_rate:.1f} files per CPU-second (measured on a random sample of {len(sample)} files, "
            f"extrapolated: {per_file * len(paths):.0f} s for the corpus)"
        )

        home = Path(tmp) / "home"
        cold = timed_run(corpus, home, args.jobs)
        warm = timed_run(corpus, home, args.jobs)
        cold_rate, warm_rate = cold["files"] / cold["seconds"], warm["files"] / warm["seconds"]
        cold_cpu_rate = cold["files"] / cold["cpu"]
        print(
            f"cold    (empty cache, --jobs {args.jobs or os.cpu_count()}): {cold_rate:8.1f} files/s, "
            f"{cold_cpu_rate:.1f} files per CPU-second ({cold['seconds']:.2f} s, {cold['cpu']:.2f} CPU-s with "
            f"start-up; {cold['parsed']} files parsed after the prefilter, {cold['findings']} findings)"
        )
        print(
            f"warm    (cached re-run):       {warm_rate:8.1f} files/s ({warm['seconds'] * 1000:.0f} ms; "
            f"{warm['cached']} cache hits, {warm['parsed']} parsed)"
        )
        ratio = cold_rate / naive_rate
        print(
            f"ratio   cold / naive: {ratio:.1f}x by wall clock ({args.jobs or os.cpu_count()} workers against 1 "
            f"process), {cold_cpu_rate / naive_cpu_rate:.1f}x per CPU-second "
            f"(target >= 25x: {'met' if ratio >= 25 else 'NOT met'}); "
            f"warm: {'met' if warm_rate >= 10_000 else 'NOT met'} (target >= 10,000 files/s)"
        )

        cli_home = Path(tmp) / "cli-home"
        cli_cold = cli_run(corpus, cli_home, args.jobs)
        cli_warm = cli_run(corpus, cli_home, args.jobs)
        print(
            f"CLI end to end, interpreter start-up included: cold {len(paths) / cli_cold:.0f} files/s "
            f"({cli_cold:.2f} s), warm {len(paths) / cli_warm:.0f} files/s ({cli_warm:.2f} s)"
        )


if __name__ == "__main__":
    main()
