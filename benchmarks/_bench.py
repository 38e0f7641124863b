"""What every benchmark shares: figures against targets, validity checks, rotation, and one CLI shape.

A benchmark module exposes `measure(quick: bool = False, ...) -> Outcome`, printing its detail lines
as it goes, and calls `cli(measure, parser)` from `main()`. `--json PATH` writes the outcome for
benchmarks/run_all.py; the exit status is 1 when a validity check failed (an arm did not do what it
claims), never because a target was missed: targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Figure:
    """One measured number against its target. `better` is "lower" or "higher"; target None: informational."""

    name: str
    measured: float
    target: float | None
    unit: str = ""
    better: str = "lower"
    detail: str = ""
    miss_reason: str = ""  # set: the target is missed whatever the number (e.g. calls failed)

    def met(self) -> bool | None:
        if self.miss_reason:
            return False
        if self.target is None or self.measured != self.measured:  # NaN: not measured
            return None
        return self.measured <= self.target if self.better == "lower" else self.measured >= self.target

    def verdict(self) -> str:
        ok = self.met()
        if ok is None:
            return "—" if self.target is None else "not measured"
        if ok:
            return "met"
        if self.miss_reason:
            return f"missed: {self.miss_reason}"
        assert self.target is not None
        by = fmt(abs(self.measured - self.target), self.unit, signed=False)
        return f"missed by {by}" if by.strip("0.x msµ%") else "missed (by less than the last digit shown)"

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        return f"{'<=' if self.better == 'lower' else '>='} {fmt(self.target, self.unit, signed=False)}"


def fmt(value: float, unit: str, signed: bool = True) -> str:
    """A value for the table: ms with a sign (they are mostly differences), ratios as 0.123x."""
    if value != value:
        return "n/a"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "%":
        return f"{value:.2%}"
    if unit == "ms":
        return f"{value:+.3f} ms" if signed else f"{value:.3f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "µs":
        return f"{value:.1f} µs"
    if unit == "":
        return f"{value:.3f}" if isinstance(value, float) and not value.is_integer() else f"{value:,.0f}"
    return f"{value:,.0f} {unit}"


@dataclass
class Outcome:
    """What a benchmark found: its figures, the validity checks it ran, and notes for the reader."""

    bench: str
    figures: list[Figure] = field(default_factory=list)
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        """An arm did what it claims; prints FAIL (and remembers it) when not."""
        self.checks += 1
        if not ok:
            self.failures.append(what)
            print(f"FAIL: {what}", flush=True)
        return ok

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    def print_figures(self) -> None:
        print(f"\n{self.bench}: figures against targets")
        width = max((len(f.name) for f in self.figures), default=10)
        for f in self.figures:
            print(f"  {f.name:{width}s} {fmt(f.measured, f.unit):>14s}  target {f.target_text():>16s}  {f.verdict()}")
        state = "all passed" if not self.failures else f"{len(self.failures)} FAILED"
        print(f"  validity checks: {self.checks} run, {state}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rotated(arms: Sequence[T], turn: int) -> list[T]:
    """The arms in the order for this turn: each arm leads once every len(arms) turns."""
    k = turn % len(arms)
    return list(arms[k:]) + list(arms[:k])


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], unit: str = "") -> str:
    """Per-repeat values, so the reader sees how noisy the median of repeats is."""
    return "[" + ", ".join(fmt(v, unit) for v in values) + "]"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def cli(measure: Callable[..., Outcome], parser: argparse.ArgumentParser, name: str) -> int:
    """Parse the benchmark's arguments (plus --quick and --json), run it, print its figures."""
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats (run_all --quick, tests)")
    parser.add_argument("--json", type=Path, help="write figures and checks here (for run_all.py)")
    args = vars(parser.parse_args())
    out_path = args.pop("json")
    print(f"{name}: {load()}", flush=True)
    outcome = measure(**args)
    outcome.print_figures()
    if out_path is not None:
        out_path.write_text(json.dumps(outcome.to_json()), encoding="utf-8")
    return 1 if outcome.failures else 0


def here() -> None:
    """Make `from _simproc import ...` work when a benchmark is imported from elsewhere."""
    folder = str(Path(__file__).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
