"""One line under each notebook cell that made calls: `llmguard · this cell: 2 calls · $0.0000264 · 56 tokens · 0.8 s`.

The widget sits where the extension was loaded, off-screen while a cell further down runs, so
each cell that called a model gets its own numbers under it. The calls counted are the ones
tagged with the cell (see `cell_tags.py`): a worker thread that carries the cell's tags counts
for it. Calls of other cells' threads that finish while the cell runs are named apart
("meanwhile 80 calls of other cells finished"), so a cell that waits for a batch says where the
money went. The time is how long the cell ran.

Shown only by a kernel (a notebook front end); a terminal IPython prints the session's summary
after such cells instead. `%%llm` and `%%llmguard` cells print their own line, in the same format
(`usage_parts`), so they get no footer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import llmguard
from llmguard.ledger.metrics import Tally
from llmguard.magics.output import note_html, show
from llmguard.magics.view import REPLAY_HINT
from llmguard.money import duration, plural, usd

OWN_SUMMARY = re.compile(r"\s*%%(llm|llmguard)\b")  # cell magics that print their own summary line


def usage_parts(used: Tally) -> list[str]:
    """`2 calls`, `$0.0000264`, `56 tokens`, then cache hits, prompt-cache reads, retries, errors if any."""
    cost = usd(used.cost_usd)
    if used.unpriced_calls:
        cost += f" (+{plural(used.unpriced_calls, 'unpriced call')})"
    parts = [plural(used.calls, "call"), cost, plural(used.tokens, "token")]
    if used.cache_hits > used.replays:
        parts.append(plural(used.cache_hits - used.replays, "cache hit"))
    if used.replays:
        parts.append(f"{used.replays:,} replayed ($0) · {REPLAY_HINT}")
    if used.prompt_cache_read_tokens:
        parts.append(plural(used.prompt_cache_read_tokens, "prompt-cache read token"))
    if used.retries:
        parts.append(plural(used.retries, "retry", "retries"))
    if used.errors:
        parts.append(plural(used.errors, "error"))
    return parts


def footer_text(used: Tally, seconds: float, others: Tally | None = None) -> str:
    """The footer; `others` are calls of other cells (their worker threads) that finished meanwhile."""
    parts = usage_parts(used) if used.calls else ["no calls"]
    if used.refusals:
        parts.append(f"{used.refusals:,} refused")
    parts.append(duration(seconds))
    if others is not None and others.calls > 0:
        parts.append(f"meanwhile {plural(others.calls, 'call')} of other cells finished ({usd(others.cost_usd)})")
    return "llmguard · this cell: " + " · ".join(parts)


@dataclass(frozen=True, slots=True)
class _Start:
    metrics: Any  # the guard's Metrics when the cell started
    cell: int
    cell_before: Tally
    total_before: Tally
    started: float


class CellFooter:
    """Remembers each cell's tally when it starts, and shows what changed when it ends."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self._start: _Start | None = None

    def pre_run_cell(self, info: Any, cell: int | None) -> None:
        self._start = None
        guard = llmguard.current()
        if guard is None or cell is None or not _shows_rich_output(self.ip):
            return
        if OWN_SUMMARY.match(getattr(info, "raw_cell", "") or ""):
            return
        own, total = guard.metrics.cell_and_totals(cell)
        self._start = _Start(guard.metrics, cell, own, total, time.perf_counter())

    def post_run_cell(self, result: Any) -> None:
        start, self._start = self._start, None
        guard = llmguard.current()
        if start is None or guard is None:
            return
        own, total = guard.metrics.cell_and_totals(start.cell)
        if guard.metrics is start.metrics:
            own, total = own.minus(start.cell_before), total.minus(start.total_before)
        # else: the cell installed a new guard, whose tallies began with it
        others = total.minus(own)
        if own.calls <= 0 and others.calls <= 0:
            return
        text = footer_text(own, time.perf_counter() - start.started, others)
        tone = "error" if own.refusals or own.errors else "info"
        show(text, f'<div class="llmguard-footer">{note_html(text, tone)}</div>')


def _shows_rich_output(ip: Any) -> bool:
    """A kernel serves a notebook front end; a terminal IPython has none (as `extension.has_widget_frontend`)."""
    return getattr(ip, "kernel", None) is not None
