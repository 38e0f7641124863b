"""Tag every call with the notebook and the execution count of the cell that made it.

A `pre_run_cell` hook sets the session tags `notebook` and `cell` before each cell runs. Calls made
later by threads the cell started carry the tags of the cell running at that moment (session tags
are process-wide); a thread that wants its own can wrap its work in `llmguard.tag(cell=...)`.

IPython changed when it bumps `execution_count` (ipython/ipython#15088, late 2025): older releases
still hold the running cell's number during `pre_run_cell`, newer ones already hold the next one.
So the offset is measured rather than assumed: from the cell that loads the extension, and again
after every cell (`post_run_cell` knows the cell's real number); the version only seeds the guess.

The tagger also drives the per-cell footer (`cell_footer.py`): it is the one part that knows
where a numbered cell starts and ends, and which number its calls are tagged with.
"""

from __future__ import annotations

from typing import Any

import llmguard
from llmguard.magics.cell_footer import CellFooter
from llmguard.magics.notebook_path import notebook_path


def _guess_offset() -> int:
    try:
        import IPython

        return 1 if tuple(IPython.version_info[:2]) >= (9, 8) else 0
    except Exception:
        return 0


class CellTagger:
    """Keeps `notebook` and `cell` session tags in step with the cell being run."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.offset = _guess_offset()
        running = getattr(getattr(ip, "displayhook", None), "exec_result", None)
        number = getattr(running, "execution_count", None)
        if isinstance(number, int):  # loaded from inside a cell: measure exactly
            self.offset = ip.execution_count - number
        self.notebook: str | None = None
        self.cell: int | None = number if isinstance(number, int) else None
        self._counter_at_pre: int | None = None
        self.footer = CellFooter(ip)

    def start(self) -> None:
        self.notebook = notebook_path(self.ip.user_ns)
        llmguard.set_session_tags(notebook=self.notebook, cell=self.cell)

    def pre_run_cell(self, info: Any) -> None:
        if not getattr(info, "store_history", True):
            return  # code run by a tool (not a numbered cell): keep the tags of the cell running it
        self._counter_at_pre = self.ip.execution_count
        self.cell = self.ip.execution_count - self.offset
        self.notebook = notebook_path(self.ip.user_ns)
        llmguard.set_session_tags(notebook=self.notebook, cell=self.cell)
        self.footer.pre_run_cell(info, self.cell)

    def post_run_cell(self, result: Any) -> None:
        number = getattr(result, "execution_count", None)
        if not getattr(getattr(result, "info", None), "store_history", True):
            return  # a nested, unnumbered run inside a cell
        if self._counter_at_pre is not None and isinstance(number, int):
            self.offset = self._counter_at_pre - number
        self._counter_at_pre = None
        self.footer.post_run_cell(result)

    def stop(self) -> None:
        llmguard.set_session_tags(notebook=None, cell=None)
