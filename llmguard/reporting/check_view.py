"""`llmguard check` in a terminal: one row per checklist item, with its fix on a line of its own
under the row, as wide as the terminal allows.

A fix holds what to paste (`cache = "on"`, `"gpt-4o-mini" = {rpm = 500, tpm = 200000}`,
`llmguard.tag(feature=...)`): those are kept on one line, never cut or split, by wrapping the text
only between such pieces (`fit.Packed`). Imported where it is used (rich loads with it).
"""

from __future__ import annotations

import re
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from llmguard.reporting.fit import Packed

# The pieces a line may not be broken inside: `code`, a TOML `key = value` (inline tables, arrays and
# strings included) and a call with its arguments; anything else breaks at spaces.
_PIECE = re.compile(
    r"`[^`]*`"
    r'|(?:"[^"]*"|[\w.:-]+) = (?:\{[^}]*\}|\[[^\]]*\]|"[^"]*"|[\w.]+)'
    r"|[\w.]+\([^)]*\)"
    r"|\S+"
)
_STATUS = {
    "pass": Text("PASS", style="green"),
    "fail": Text("FAIL", style="bold red"),
    "n/a": Text("N/A", style="dim"),
}


def pieces(text: str) -> list[str]:
    """`text` split where a line may break: `set cache = "on" in` -> ["set", 'cache = "on"', "in"]."""
    return _PIECE.findall(text)


def render_check(result: Any, console: Console) -> None:
    """The readiness checklist: number, status, the check and why; the fix under the row."""
    ev = result.evidence
    table = Table(
        title=f"production readiness: {ev.root}",
        box=box.SIMPLE_HEAD,
        expand=True,
        show_edge=False,
        title_justify="left",
    )
    table.add_column("#", justify="right", no_wrap=True, width=2)
    table.add_column("status", no_wrap=True, width=6)
    table.add_column("check, why and fix", overflow="fold", ratio=1)
    for item in result.items:
        check = Group(Packed(pieces(item.title), style="bold"), Packed(pieces(item.reason)))
        table.add_row(str(item.number) if item.number else "-", _STATUS[item.status].copy(), check)
        if item.fix:
            table.add_row("", Text("fix", style="cyan"), Packed(pieces(item.fix)))
        table.add_section()
    console.print(table)
    failed = len(result.failed)
    sources = [f"settings: {ev.pyproject or 'defaults'}", f"ledger: {ev.ledger}", f"lint findings: {len(ev.findings)}"]
    store = getattr(ev, "store", None)
    if store:
        state = "reachable" if store["reachable"] else f"unreachable: {store['reason']}"
        sources.append(f"store: {store['label']} ({state})")
    console.print(Packed(sources, sep=" · ", indent=2))
    console.print(
        Text(f"{failed} check(s) failed", style="bold red") if failed else Text("all checks passed", style="green")
    )
