"""The short box an llmguard refusal shows in a cell in place of the SDK's ~100-line traceback.

The box names the limit that refused the call, how much it is at, and the one thing to change; its
last line names the SDK error and the cell line that raised it. The traceback is folded, not lost:
the HTML version keeps it in a closed `<details>` element, and `%tb` prints it in full.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from llmguard.errors import REFUSAL_PREFIX, Refusal
from llmguard.magics.output import TONES, code_html
from llmguard.redact import scrub

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FOLDED = "the SDK traceback is folded: %tb shows it"


@dataclass(frozen=True)
class RefusalBox:
    """What one refusal's box says; `text()` for terminals and `html()` for notebooks."""

    refusal: Refusal
    error: str  # the SDK error's class, with its package: `openai.RateLimitError`
    where: str | None  # the cell line that raised it, as IPython names it: `Cell In[3], line 3`
    traceback: str  # the full traceback, plain text, for the folded part of the HTML

    def title(self) -> str:
        """`llmguard: session budget would be exceeded` (a budget's own words), else what llmguard did and why."""
        limit = self.refusal.parts()[0]
        if f"{REFUSAL_PREFIX} {limit} would be exceeded" in self.refusal.message:
            return f"{REFUSAL_PREFIX} {limit} would be exceeded"
        action = "refused this call" if self.refusal.refused else "stopped retrying this call"
        return f"llmguard {action}: {limit}"

    def body(self) -> list[str]:
        """How much, what to change and (for a call it stopped retrying) what the provider said."""
        _, amount, change = self.refusal.parts()
        lines = [amount]
        if change:
            lines.append(f"to continue: {change}")
        if self.refusal.provider_said:
            lines.append(f"the provider said: {self.refusal.provider_said}")
        return lines

    def origin(self) -> str:
        status = f" (HTTP {self.refusal.status})" if self.refusal.status is not None else ""
        return self.error + status + (f" at {self.where}" if self.where else "")

    def lines(self) -> list[str]:
        """The box as text lines (no secret: each line is scrubbed of anything key-shaped)."""
        lines = [f"┌ {self.title()}", *(f"│ {line}" for line in self.body()), f"└ {self.origin()} · {FOLDED}"]
        return [scrub(line) or "" for line in lines]

    def text(self) -> str:
        return "\n".join(self.lines())

    def html(self) -> str:
        colour = TONES["error"] if self.refusal.refused else TONES["warn"]
        action, _, limit = self.title().partition(": ")  # the first part in bold
        rows = "".join(f"<div>{code_html(scrub(line) or '')}</div>" for line in self.body())
        folded = scrub(_ANSI.sub("", self.traceback)) or ""
        count = folded.count("\n") + 1
        return (
            f'<div class="llmguard-refusal-box" style="border-left:3px solid {colour};padding:4px 10px;'
            f'font-size:12px;line-height:1.5">'
            f"<div><b>{html.escape(action)}</b>: {code_html(limit)}</div>{rows}"
            f'<div style="opacity:0.7">{html.escape(scrub(self.origin()) or "")}</div>'
            f'<details class="llmguard-traceback"><summary style="cursor:pointer;opacity:0.7">'
            f"SDK traceback ({count} lines)</summary>"
            f'<pre style="font-size:11px;margin:4px 0;white-space:pre-wrap">{html.escape(folded)}</pre>'
            f"</details></div>"
        )
