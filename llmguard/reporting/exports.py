"""The ledger and its breakdowns as files: JSON, CSV (safe to open in a spreadsheet) and JSONL call events."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmguard.ledger.sqlite import connect
from llmguard.reporting.db import has_calls_table
from llmguard.reporting.filters import Filters
from llmguard.reporting.timerange import iso

_EXPORT_COLUMNS = (
    "request_id",
    "ts",
    "run_id",
    "provider",
    "endpoint",
    "model",
    "requested_model",
    "prompt_version",
    "feature",
    "tenant",
    "user",
    "notebook",
    "cell",
    "priority",
    "decision",
    "status",
    "http_status",
    "error_type",
    "stream",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cache_hit",
    "saved_usd",
    "dedup_hit",
    "retry_count",
    "fallback_used",
    "queue_ms",
    "retry_delay_ms",
    "model_ms",
    "ttft_ms",
    "total_ms",
    "steps",
    "tags",
)
# Ledger fields an event carries under their own names after the seed's (booleans as booleans).
_AS_RECORDED = tuple(
    "run_id provider endpoint requested_model notebook cell priority decision status http_status error_type saved_usd".split()
)
_BOOLEANS = ("stream", "dedup_hit")


def _event(row: dict[str, Any]) -> dict[str, Any]:
    """One ledger row as a call event (see `iter_events`)."""
    steps = json.loads(row["steps"]) if row["steps"] else {}
    tags = json.loads(row["tags"]) if row["tags"] else {}
    event = {
        "request_id": row["request_id"],
        "timestamp": iso(row["ts"]),
        "feature": row["feature"],
        "tenant_id": row["tenant"],
        "user_id": row["user"],
        "model": row["model"],
        "prompt_version": row["prompt_version"],
        "input_tokens": row["input_tokens"],
        "cached_input_tokens": row["cached_input_tokens"],
        "output_tokens": row["output_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "estimated_cost": row["cost_usd"],
        "latency_ms": {
            **steps,
            "queue": row["queue_ms"],
            "retry_delay": row["retry_delay_ms"],
            "model": row["model_ms"],
            "ttft": row["ttft_ms"],
            "total": row["total_ms"],
        },
        "retry_count": row["retry_count"],
        "cache_hit": bool(row["cache_hit"]),
        "fallback_used": bool(row["fallback_used"]),
    }
    for name in _AS_RECORDED:
        event[name] = row[name]
    for name in _BOOLEANS:
        event[name] = bool(row[name])
    event["ts"] = row["ts"]
    if tags:
        event["tags"] = tags
    return event


def iter_events(ledger_path: Path, filters: Filters | None = None) -> Iterator[dict[str, Any]]:
    """Call events in the seed article's structured-event shape, streamed from the ledger one at a time.

    Names follow the seed (`tenant_id`, `user_id`, `estimated_cost`, `latency_ms` with the user's
    steps beside queue/retry_delay/model/ttft/total); the rest are the ledger's own fields.
    """
    filters = filters or Filters()
    if not has_calls_table(ledger_path):
        return
    where, params = filters.sql()
    conn = connect(ledger_path, readonly=True)
    try:
        cursor = conn.execute(
            f"SELECT {', '.join(_EXPORT_COLUMNS)} FROM calls WHERE 1=1 {where} ORDER BY ts, rowid", params
        )
        for values in cursor:
            yield _event(dict(zip(_EXPORT_COLUMNS, values, strict=True)))
    finally:
        conn.close()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(data: Any) -> str:
    """Indented JSON; NaN and infinities (which JSON cannot hold) become null."""
    return json.dumps(_clean(data), indent=2, default=str)


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """A breakdown row with its `steps` spread into `step.<name>.<figure>` columns (for CSV)."""
    flat = {k: v for k, v in row.items() if k != "steps"}
    for name, figures in (row.get("steps") or {}).items():
        for figure, value in figures.items():
            flat[f"step.{name}.{figure}"] = value
    return flat


# A cell starting with one of these is run as a formula by spreadsheets (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text that would start a formula gets a leading `'`
    (numbers, negative ones too, stay numbers), and NUL bytes are written as the text `\\x00`."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Breakdown rows as CSV; text cells neutralised (`csv_cell`), so a tag value cannot become a formula."""
    flat = [flatten(r) for r in rows]
    fieldnames: list[str] = []
    for row in flat:
        fieldnames.extend(k for k in row if k not in fieldnames)
    out = io.StringIO()
    if flat:
        writer = csv.writer(out)
        writer.writerow([csv_cell(name) for name in fieldnames])
        writer.writerows([csv_cell(row.get(name, "")) for name in fieldnames] for row in flat)
    return out.getvalue()
