"""Scalar values for a schema: null, booleans, strings (with `format`, lengths and `pattern`),
integers and numbers (with bounds and `multipleOf`). Each maker takes the generator's seeded RNG,
so the same schema and digest always give the same value."""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

from llmguard.sim.structured.common import MAX_STRING, SchemaError
from llmguard.sim.structured.keywords import size_bounds
from llmguard.sim.text import WORDS


def word(rng: random.Random) -> str:
    return WORDS[rng.randrange(len(WORDS))]


def make_null(rng: random.Random, schema: dict[str, Any]) -> None:
    return None


def make_boolean(rng: random.Random, schema: dict[str, Any]) -> bool:
    return rng.random() < 0.5


def make_string(rng: random.Random, schema: dict[str, Any]) -> str:
    lo, hi = size_bounds(schema, "minLength", "maxLength", MAX_STRING)
    pattern = schema.get("pattern")
    regex = None
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError):
            raise SchemaError(f"'pattern' {pattern!r} is not a valid regular expression") from None
    candidates = [_formatted(rng, schema.get("format"), lo, hi) for _ in range(1 if regex is None else 40)]
    for text in candidates:
        if len(text) >= lo and (hi is None or len(text) <= hi) and (regex is None or regex.search(text)):
            return text
    if regex is not None:
        raise SchemaError(f"pattern is not supported by llmguard.sim: no generated string matches {pattern!r}")
    raise SchemaError(f"format {schema.get('format')!r} cannot fit between minLength {lo} and maxLength {hi}")


def _formatted(rng: random.Random, fmt: Any, lo: int, hi: int | None) -> str:
    if fmt == "date-time":
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
    if fmt == "date":
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "time":
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
    if fmt == "duration":
        return f"PT{rng.randint(1, 59)}M"
    if fmt in ("email", "idn-email"):
        return f"{word(rng)}@example.com"
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return f"https://example.com/{word(rng)}"
    if fmt in ("hostname", "idn-hostname"):
        return f"{word(rng)}.example.com"
    if isinstance(fmt, str) and fmt.startswith("uuid"):
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt == "ipv4":
        return f"192.0.2.{rng.randint(1, 254)}"
    if fmt == "ipv6":
        return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    words = [word(rng) for _ in range(rng.randint(1, 3))]
    text = " ".join(words)
    while len(text) < lo:
        text += " " + word(rng)
    return text[:hi] if hi is not None and len(text) > hi else text


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive), both drafts' exclusive forms."""
    lo, hi = schema.get("minimum"), schema.get("maximum")
    lo_x = hi_x = False
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if ex_lo is True:
        lo_x = True
    elif isinstance(ex_lo, int | float) and not isinstance(ex_lo, bool):
        if lo is None or ex_lo >= lo:
            lo, lo_x = ex_lo, True
    if ex_hi is True:
        hi_x = True
    elif isinstance(ex_hi, int | float) and not isinstance(ex_hi, bool):
        if hi is None or ex_hi <= hi:
            hi, hi_x = ex_hi, True
    for name, bound in (("minimum", lo), ("maximum", hi)):
        if bound is not None and (not isinstance(bound, int | float) or isinstance(bound, bool)):
            raise SchemaError(f"'{name}' must be a number")
        if bound is not None and not math.isfinite(bound):
            raise SchemaError(f"'{name}' must be finite")
    return lo, lo_x, hi, hi_x


def _step(schema: dict[str, Any]) -> float | None:
    """The schema's `multipleOf`, checked positive."""
    step = schema.get("multipleOf")
    if step is not None and (not isinstance(step, int | float) or isinstance(step, bool) or step <= 0):
        raise SchemaError("'multipleOf' must be a positive number")
    return step


def make_integer(rng: random.Random, schema: dict[str, Any]) -> int:
    lo_f, lo_x, hi_f, hi_x = _bounds(schema)
    lo = None if lo_f is None else (math.floor(lo_f) + 1 if lo_x else math.ceil(lo_f))
    hi = None if hi_f is None else (math.ceil(hi_f) - 1 if hi_x else math.floor(hi_f))
    if hi is None:
        lo, hi = (1, 100) if lo is None else (lo, lo + 100)
    elif lo is None:
        lo = hi - 100
    if lo > hi:
        raise SchemaError(f"no integer lies between minimum {lo_f} and maximum {hi_f}")
    step = _step(schema)
    if step is None:
        return rng.randint(lo, hi)
    if float(step).is_integer():
        m = int(step)
        first, last = -(-lo // m), hi // m
        if first > last:
            raise SchemaError(f"no multiple of {step} lies between {lo} and {hi}")
        return rng.randint(first, last) * m
    for value in range(lo, min(hi, lo + 10_000) + 1):
        if (value / step).is_integer():
            return value
    raise SchemaError(f"no integer multiple of {step} lies between {lo} and {hi}")


def make_number(rng: random.Random, schema: dict[str, Any]) -> float | int:
    lo, lo_x, hi, hi_x = _bounds(schema)
    step = _step(schema)
    if step is not None:
        return _multiple(step, lo, lo_x, hi, hi_x)
    if hi is None:
        if lo is None:
            return rng.randint(0, 99) + 0.5
        hi = lo + 100
    elif lo is None:
        lo = hi - 100
    if lo > hi or lo == hi and (lo_x or hi_x):
        raise SchemaError(f"no number lies between minimum {lo} and maximum {hi}")
    if lo == hi:
        return lo
    value = round(lo + (hi - lo) * rng.uniform(0.1, 0.9), 2)
    if not (lo < value < hi):
        value = lo + (hi - lo) / 2
    if not (lo < value < hi):
        raise SchemaError(f"no number lies strictly between {lo} and {hi}")
    return value


def _multiple(step: float, lo: float | None, lo_x: bool, hi: float | None, hi_x: bool) -> float:
    """The first multiple of `step` within the bounds (a `multipleOf` number)."""
    low = -1e6 if lo is None else lo
    high = (low + 100 * step) if hi is None else hi
    first, last = math.ceil(low / step), math.floor(high / step)
    for k in range(first, min(last, first + 1000) + 1):
        value = k * step
        if (lo_x and value <= low) or (hi_x and value >= high) or value < low or value > high:
            continue
        if isinstance(step, int) or (value / step).is_integer():
            return value
    raise SchemaError(f"no multiple of {step} lies between minimum {lo} and maximum {hi}")


SCALARS: dict[str, Callable[[random.Random, dict[str, Any]], Any]] = {
    "null": make_null,
    "boolean": make_boolean,
    "string": make_string,
    "integer": make_integer,
    "number": make_number,
}
