"""What one ledger row is: the `CallEvent` record, its request id, and its values as SQLite stores them.

No row is lost to what it holds: a value SQLite cannot store is stored as text (a lone surrogate,
which UTF-8 cannot encode, as its backslash escape: "bad\\ud800"), and one JSON cannot hold is
stored by its str(). The conversions here are only used after an insert failed, or for the two
JSON columns, so the hot path pays nothing for them.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import Any

from llmguard.context import STEP_TAGS, StepEvent
from llmguard.ledger import journal

# Request ids: a random per-process prefix and a counter; unique across processes, ~10x cheaper than uuid4.
_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def new_id_prefix_after_fork() -> None:
    """A forked child would repeat its parent's ids (and ingestion would take its rows for duplicates)."""
    global _ID_PREFIX
    _ID_PREFIX = uuid.uuid4().hex[:12]


@dataclass(slots=True)
class CallEvent:
    """The seed article's structured event, extended; one ledger row."""

    request_id: str = field(default_factory=new_request_id)
    ts: float = field(default_factory=time.time)
    run_id: str = ""
    provider: str = ""
    endpoint: str = ""
    base_url: str = ""
    model: str = ""
    requested_model: str = ""
    prompt_version: str | None = None
    feature: str | None = None
    tenant: str | None = None
    user: str | None = None
    notebook: str | None = None
    cell: int | None = None
    priority: str = "interactive"
    decision: str = "process"  # process | queue | fallback | reject | cache | replay (a sampled draw replayed)
    status: str = "ok"  # ok | error | refused | incomplete
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    stream: bool = False
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated_tokens: int | None = None
    tokens_approximate: bool = False
    cost_usd: float | None = 0.0
    reserved_usd: float | None = None
    cache_hit: bool = False
    saved_usd: float | None = None
    dedup_hit: bool = False
    stale: bool = False
    retry_count: int = 0
    fallback_used: bool = False
    queue_ms: float = 0.0
    retry_delay_ms: float = 0.0
    model_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)

    def latency_ms(self) -> dict[str, float | None]:
        return {
            "queue": self.queue_ms,
            "retry_delay": self.retry_delay_ms,
            "model": self.model_ms,
            "ttft": self.ttft_ms,
            "total": self.total_ms,
            **self.steps,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(CallEvent)]
JSON_COLUMNS = {"steps", "tags"}
_VALUES = attrgetter(*COLUMNS)
_JSON_POSITIONS = [COLUMNS.index(name) for name in sorted(JSON_COLUMNS)]

# One row per finished step() (see context.StepEvent); the tags are typed as the calls' columns.
STEP_COLUMNS = ["step_id", "ts", "run_id", "name", "duration_ms", "over_budget", "calls", *STEP_TAGS]
_STEP_VALUES = attrgetter(*STEP_COLUMNS)


class StepRow(list[Any]):
    """A pending row of the steps table: the one queue of pending rows holds both kinds, in order."""

    __slots__ = ()


def call_row(event: CallEvent) -> list[Any]:
    """The values of `event` in COLUMNS order, its JSON columns as text (None when empty)."""
    values = list(_VALUES(event))
    for position in _JSON_POSITIONS:
        value = values[position]
        values[position] = _json_text(value) if value else None
    return values


def step_row(event: StepEvent) -> StepRow:
    """The values of a finished step in STEP_COLUMNS order."""
    return StepRow(_STEP_VALUES(event))


def encode_step(row: list[Any]) -> bytes:
    """A step row as a journal record of its own kind."""
    return journal.encode_kind("step", dict(zip(STEP_COLUMNS, row, strict=True)))


# ---- values SQLite refuses ------------------------------------------------------------------------

_INT64 = (-(1 << 63), (1 << 63) - 1)
_LAST_RESORT_CHARS = 1 << 24  # a value longer than this is cut when nothing else gets its row in


def safe_str(value: Any) -> str:
    """str(value), or a placeholder naming its type when its __str__ fails (a row is never lost to it)."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}: str() failed>"


def _text(value: str) -> str:
    """Text SQLite can store: lone surrogates (which UTF-8 cannot encode) as backslash escapes."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(value: Any) -> Any:
    """One value as SQLite stores it: a number, text it can encode, or None."""
    kind = type(value)
    if value is None or kind is float or kind is bool:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if kind is str:
        return _text(value)
    if isinstance(value, int):  # an IntEnum or another int subclass: the number itself
        return _storable(int.__int__(value))
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return _text(str.__str__(value))
    return _text(safe_str(value))


def stored_form(value: Any) -> Any:
    """A value as the ledger stores it, so a query for it finds its rows (a lone surrogate escaped)."""
    return _storable(value)


def bindable(row: list[Any]) -> list[Any]:
    """The row with what SQLite cannot store written as text: a row is never lost for one bad value.

    Only used after an insert failed, so the hot path pays nothing for it. A step row stays one.
    """
    values = [_storable(value) for value in row]
    return StepRow(values) if isinstance(row, StepRow) else values


def as_text(row: list[Any]) -> list[Any]:
    """The last resort for a row SQLite still refuses (a value over its size limit): numbers kept,
    everything else as text cut to _LAST_RESORT_CHARS."""
    out = []
    for value in bindable(row):
        if isinstance(value, str) and len(value) > _LAST_RESORT_CHARS:
            value = value[:_LAST_RESORT_CHARS] + f"...[cut: {len(value):,} characters]"
        out.append(value)
    return out


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except Exception:  # a key JSON cannot hold, a cycle, a str() that raises: the row is kept regardless
        return json.dumps(_plain(value, set(), 0))


def _plain(value: Any, open_: set[int], depth: int) -> Any:
    """`value` with what JSON cannot hold as text: keys by str(), cycles as "<cycle>"."""
    if value is None or isinstance(value, str | int | float):
        return value
    if not isinstance(value, dict | list | tuple):
        return safe_str(value)
    if id(value) in open_:
        return "<cycle>"
    if depth >= 100:
        return "<too deep>"
    open_.add(id(value))
    try:
        if isinstance(value, dict):
            return {
                k if k is None or isinstance(k, str | int | float) else safe_str(k): _plain(v, open_, depth + 1)
                for k, v in value.items()
            }
        return [_plain(v, open_, depth + 1) for v in value]
    finally:
        open_.discard(id(value))
