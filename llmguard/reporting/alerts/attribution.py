"""Who drove an amount: each value of one dimension's share of it, biggest first (capacity and budget alerts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmguard.reporting.db import query
from llmguard.reporting.filters import DIMENSIONS


def shares(ledger_path: Path, dim: str, where: str, params: tuple[Any, ...], amount: str) -> dict[Any, float]:
    """{value of `dim`: its share of SUM(`amount`)} over the calls `where` selects; {} when the sum is 0."""
    rows = query(ledger_path, f"SELECT {DIMENSIONS[dim]}, SUM({amount}) FROM calls WHERE {where} GROUP BY 1", params)
    total = sum(r[1] or 0 for r in rows)
    return {r[0]: (r[1] or 0) / total for r in sorted(rows, key=lambda r: -(r[1] or 0))} if total else {}
