"""`%llmguard report`: this session's cost report, inline, with a bar chart.

Uses `llmguard.reporting.report.report_html` when the report module provides it; otherwise a compact HTML
report built from `llmguard.reporting.report.summary` (tables by model and by cell, with CSS bars, which
render in JupyterLab, Notebook 7 and VS Code without a plotting library).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from llmguard.magics.output import count, ms, usd


def session_report(guard: Any, by: str = "model") -> tuple[str, str]:
    """(text, html) of the cost report for this session's calls (the guard's run id)."""
    from llmguard.reporting import report

    ledger = guard.ledger
    if ledger is None or not ledger.available:
        text = "llmguard report: no ledger is kept (ledger=False or the folder is not writable)"
        return text, html.escape(text)
    path: Path = ledger.path
    run_id = ledger.run_id
    rows = report.summary(path, by=by, run_id=run_id)
    text = _text(rows, by)
    builder = getattr(report, "report_html", None)
    if builder is not None:
        try:
            return text, builder(path, run_id=run_id, by=by)
        except TypeError:  # a report_html without these filters: the whole ledger
            return text, builder(path)
    cells = report.summary(path, by="cell", run_id=run_id) if by != "cell" else []
    body = _table(rows, by, "Cost by " + by.replace("_", " "))
    if cells:
        cells.sort(key=lambda row: (row["cell"] is None, row["cell"] or 0))
        body += _table(cells, "cell", "Cost by cell")
    return (
        text,
        f'<div class="llmguard-report"><b>llmguard report</b> · this session ({html.escape(run_id)}){body}</div>',
    )


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


def _table(rows: list[dict[str, Any]], by: str, title: str) -> str:
    if not rows:
        return "<p>No calls recorded in this session yet.</p>"
    top = max((row["cost_usd"] for row in rows), default=0.0) or 1.0
    head = "".join(
        f"<th style='text-align:{'left' if i == 0 else 'right'}'>{name}</th>"
        for i, name in enumerate((by, "calls", "input tok", "output tok", "cache hits", "errors", "p50", "p95", "cost"))
    )
    body = []
    for row in rows:
        width = 100 * row["cost_usd"] / top
        bar = (
            f"<div style='display:inline-block;width:120px;background:rgba(128,128,128,0.15);margin-left:6px'>"
            f"<div style='width:{width:.1f}%;height:9px;background:#2f7ed8'></div></div>"
        )
        label = "-" if row[by] is None else html.escape(str(row[by]))
        cells = [
            label,
            f"{row['calls']:,}",
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            f"{row['cache_hits']:,}",
            f"{row['errors']:,}",
            ms(row["p50_ms"]),
            ms(row["p95_ms"]),
        ]
        tds = "".join(f"<td style='text-align:{'left' if i == 0 else 'right'}'>{c}</td>" for i, c in enumerate(cells))
        body.append(f"<tr>{tds}<td style='text-align:right;white-space:nowrap'>{usd(row['cost_usd'])}{bar}</td></tr>")
    return (
        f"<h4 style='margin:8px 0 2px'>{html.escape(title)}</h4><table>{'<tr>' + head + '</tr>'}{''.join(body)}</table>"
    )
