"""The terminal's line after a cell that called a model, naming a refusal once.

A terminal IPython has no widget, so one summary line follows each cell whose calls changed the
guard's counters. It names the last refusal only in the cell that was refused, and not when that
cell already showed it: in a refusal box, or in the summary of a `%%llmguard` cell. (The widget and
`%llmguard widget` keep showing the last refusal: they describe the session, not the cell.)
"""

from __future__ import annotations

from typing import Any

from llmguard.magics import output
from llmguard.magics import view as views


class AfterCell:
    """What a cell changed in the guard, between its `pre_run_cell` and `post_run_cell`."""

    def __init__(self) -> None:
        self._version = 0
        self._refusals = 0
        self._summarised = False  # a %%llmguard cell's own summary names its refusals

    def pre_run_cell(self, guard: Any, raw_cell: str) -> None:
        snapshot = guard.metrics.snapshot() if guard is not None else {}
        self._version = snapshot.get("version", 0)
        self._refusals = snapshot.get("refusals", 0)
        first = raw_cell.lstrip().partition("\n")[0].split()
        self._summarised = bool(first) and first[0] == "%%llmguard" and "--quiet" not in first

    def post_run_cell(self, guard: Any, boxed: int) -> None:
        """Print the summary line if the cell's calls changed anything; `boxed`: refusals shown in a box."""
        if guard is None or guard.metrics.version == self._version:
            return
        view = views.collect(guard)
        if view["refusals"] == self._refusals or boxed or self._summarised:
            view["last_refusal"] = None  # not this cell's, or already shown in it
        print_line(view)


def print_line(view: dict[str, Any]) -> None:
    """The widget's information as one line (main thread only)."""
    line = views.one_line(view)
    output.terminal_line(line, len("llmguard"), line.find("last refusal:") if view.get("last_refusal") else -1)
