"""Reading JSON-schema keywords: the types a schema allows, whether a value has one of them, size
bounds, and `_merge`-ing two schemas into one (for `allOf` and the keywords beside a `$ref`)."""

from __future__ import annotations

from typing import Any

from llmguard.sim.structured.common import SchemaError, canonical

TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")  # cheapest first
UNSUPPORTED = ("not", "if", "then", "else", "contains", "dependentRequired", "dependentSchemas")
_LOWER_BOUNDS = ("minimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "maxLength", "maxItems", "maxProperties")


def types_of(schema: dict[str, Any]) -> list[str]:
    raw = schema.get("type")
    if raw is None:
        types = _inferred_types(schema)
    else:
        types = [raw] if isinstance(raw, str) else raw
        if not isinstance(types, list) or not types:
            raise SchemaError(f"'type' must be a type name or a non-empty list of them, got {raw!r}")
        for t in types:
            if t not in TYPES:
                raise SchemaError(f"unknown type {t!r}")
    if schema.get("nullable") is True and "null" not in types:
        types = [*types, "null"]
    return types


def _inferred_types(schema: dict[str, Any]) -> list[str]:
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return ["object"]
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "uniqueItems")):
        return ["array"]
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return ["string"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return ["number"]
    return ["string"]  # `{}` accepts anything: a word is the most readable anything


def matches_type(value: Any, types: list[str]) -> bool:
    for t in types:
        if t == "null" and value is None:
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if t == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t == "integer" and isinstance(value, float) and value.is_integer():
            return True
        if t == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if t == "string" and isinstance(value, str):
            return True
        if t == "array" and isinstance(value, list):
            return True
        if t == "object" and isinstance(value, dict):
            return True
    return False


def size_bounds(schema: dict[str, Any], low_key: str, high_key: str, cap: int) -> tuple[int, int | None]:
    """(low, high) of a length or item count (`minLength`/`maxLength`, `minItems`/`maxItems`)."""
    lo, hi = schema.get(low_key, 0), schema.get(high_key)
    if not isinstance(lo, int) or lo < 0 or hi is not None and (not isinstance(hi, int) or hi < 0):
        raise SchemaError(f"'{low_key}' and '{high_key}' must be non-negative integers")
    if hi is not None and lo > hi:
        raise SchemaError(f"{low_key} {lo} is greater than {high_key} {hi}")
    if lo > cap:
        raise SchemaError(f"{low_key} above {cap} is not supported by llmguard.sim")
    return lo, hi


def _intersect_types(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    left = {a} if isinstance(a, str) else set(a)
    right = {b} if isinstance(b, str) else set(b)
    both = left & right
    if "integer" in left and "number" in right or "number" in left and "integer" in right:
        both.add("integer")
    if not both:
        raise SchemaError(f"allOf combines incompatible types {sorted(left)} and {sorted(right)}")
    return [t for t in TYPES if t in both]


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema that both `a` and `b` describe (for allOf and $ref siblings), or SchemaError."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "type":
            out[key] = _intersect_types(out[key], value)
        elif key == "properties":
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[key] = props
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "enum":
            keep = {canonical(v) for v in value}
            out[key] = [v for v in out[key] if canonical(v) in keep]
        elif key in _LOWER_BOUNDS:
            out[key] = max(out[key], value)
        elif key in _UPPER_BOUNDS:
            out[key] = min(out[key], value)
        elif key == "additionalProperties":
            out[key] = False if value is False or out[key] is False else {"allOf": [out[key], value]}
        elif key == "items" and isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = {"allOf": [out[key], value]}
        elif key == "allOf":
            out[key] = [*out[key], *value]
        elif key in ("anyOf", "oneOf"):  # both sides branch: keep both choices, as allOf
            out["allOf"] = [*out.get("allOf", []), {key: out.pop(key)}, {key: value}]
        elif key in ("title", "description", "default", "examples", "$comment"):
            continue
        elif canonical(out[key]) != canonical(value):
            raise SchemaError(f"allOf combines conflicting {key!r} values {out[key]!r} and {value!r}")
    return out
