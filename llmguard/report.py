"""Cost and latency summaries from the ledger, aggregated in SQL (a ledger can hold millions of rows)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from llmguard.ledger import connect

GROUPABLE = ("model", "provider", "feature", "tenant", "user", "prompt_version", "notebook", "cell", "endpoint")


def _percentile_sql(group: str, where: str, q: float) -> str:
    """Nearest-rank percentile of total_ms per group, computed by SQLite's window functions."""
    return f"""
        SELECT {group} AS g, total_ms AS v FROM (
            SELECT {group}, total_ms,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY total_ms) AS rn,
                   COUNT(*) OVER (PARTITION BY {group}) AS n
            FROM calls WHERE total_ms IS NOT NULL {where}
        ) WHERE rn = MAX(1, CAST(((n * {q}) + 0.999999999) AS INTEGER))
    """


def summary(ledger_path: Path, by: str = "model", run_id: str | None = None) -> list[dict[str, Any]]:
    """One row per group: calls, tokens, cost, p50/p95 latency."""
    if by not in GROUPABLE:
        raise ValueError(f"llmguard: cannot group by {by!r}; choose one of {', '.join(GROUPABLE)}")
    where, params = ("AND run_id = ?", (run_id,)) if run_id else ("", ())
    conn = connect(ledger_path, readonly=True)
    try:
        rows = conn.execute(
            f"""SELECT {by} AS g, COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
                       SUM(reasoning_tokens), SUM(COALESCE(cost_usd, 0)), SUM(cost_usd IS NULL),
                       SUM(cache_hit), SUM(status != 'ok'), SUM(retry_count)
                FROM calls WHERE 1=1 {where} GROUP BY {by} ORDER BY SUM(COALESCE(cost_usd, 0)) DESC""",
            params,
        ).fetchall()
        p50 = dict(conn.execute(_percentile_sql(by, where, 0.50), params).fetchall())
        p95 = dict(conn.execute(_percentile_sql(by, where, 0.95), params).fetchall())
    finally:
        conn.close()
    return [
        {
            by: g,
            "calls": calls,
            "input_tokens": inp or 0,
            "cached_input_tokens": cached or 0,
            "output_tokens": out or 0,
            "reasoning_tokens": reasoning or 0,
            "cost_usd": round(cost or 0.0, 10),
            "unpriced_calls": unpriced or 0,
            "cache_hits": hits or 0,
            "errors": errors or 0,
            "retries": retries or 0,
            "p50_ms": p50.get(g),
            "p95_ms": p95.get(g),
        }
        for g, calls, inp, cached, out, reasoning, cost, unpriced, hits, errors, retries in rows
    ]


def last_run_id(ledger_path: Path) -> str | None:
    conn = connect(ledger_path, readonly=True)
    try:
        row = conn.execute("SELECT run_id FROM calls ORDER BY ts DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def to_table(rows: list[dict[str, Any]], by: str = "model", title: str = "llmguard cost summary") -> Any:
    from rich.table import Table

    table = Table(title=title)
    for name in (by, "calls", "input tok", "cached", "output tok", "cost USD", "p50 ms", "p95 ms", "errors"):
        table.add_column(name, justify="left" if name == by else "right")
    totals = {"calls": 0, "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "errors": 0}
    for row in rows:
        cost = f"{row['cost_usd']:.6f}" + (f" (+{row['unpriced_calls']} unpriced)" if row["unpriced_calls"] else "")
        table.add_row(
            str(row[by]), f"{row['calls']:,}", f"{row['input_tokens']:,}", f"{row['cached_input_tokens']:,}",
            f"{row['output_tokens']:,}", cost, _ms(row["p50_ms"]), _ms(row["p95_ms"]), str(row["errors"]),
        )
        for key in totals:
            totals[key] += row[key]
    if len(rows) > 1:
        table.add_row(
            "total", f"{totals['calls']:,}", f"{totals['input_tokens']:,}", f"{totals['cached_input_tokens']:,}",
            f"{totals['output_tokens']:,}", f"{totals['cost_usd']:.6f}", "", "", str(totals["errors"]),
            style="bold",
        )
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
