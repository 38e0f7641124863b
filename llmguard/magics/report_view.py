"""`%llmguard report [--by X]`: this session's report, inline, as text and as the HTML report.

The HTML is `llmguard.reporting.html.report_html` for this session's run, grouped by X: its
headline, its charts over time (in buckets of seconds, as long as a session runs), the cost by X
and by each tag, what went wrong, and the tables by X. It takes the notebook's theme colours
(JupyterLab's variables) and fits the output area's width. The text is a short table by X for
frontends that show only text.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from llmguard.magics.output import count, ms, usd


def session_report(guard: Any, by: str = "model") -> tuple[str, str]:
    """(text, html) of the report of this session's calls (the guard's run id), grouped by `by`."""
    from llmguard.reporting.html import report_html
    from llmguard.reporting.queries import summary

    ledger = guard.ledger
    if ledger is None or not ledger.available:
        text = "llmguard report: no ledger is kept (ledger=False or the folder is not writable)"
        return text, html.escape(text)
    path: Path = ledger.path
    run_id = ledger.run_id
    rows = summary(path, by=by, run_id=run_id)
    title = f"llmguard report · this session, by {by.replace('_', ' ')}"
    return _text(rows, by), report_html(path, run_id=run_id, by=by, title=title)


def _text(rows: list[dict[str, Any]], by: str) -> str:
    if not rows:
        return "llmguard report: no calls recorded in this session yet"
    lines = ["llmguard report (this session)"]
    for row in rows:
        label = "-" if row[by] is None else str(row[by])
        lines.append(
            f"  {label:<24} {row['calls']:>5} calls  {count(row['input_tokens']):>6} in  "
            f"{count(row['output_tokens']):>6} out  {usd(row['cost_usd']):>10}  p95 {ms(row['p95_ms'])}"
        )
    total = sum(row["cost_usd"] for row in rows)
    lines.append(f"  total {sum(r['calls'] for r in rows)} calls, {usd(total)}")
    return "\n".join(lines)
