"""Structured answers: JSON values that satisfy a JSON schema, and which tool a turn calls.

Used by every simulated API that returns JSON (OpenAI chat `response_format`, tool-call arguments on
OpenAI chat / Responses and Anthropic `tool_use` input). The value is deterministic for a given
schema and digest, so the same request gets the same answer, and it validates against the schema so
`client.chat.completions.parse(...)` and `jsonschema` accept it.

Supported: `type` (one or a list such as `["string", "null"]`, plus OpenAPI `nullable`),
`properties`, `required`, `additionalProperties`, `min/maxProperties`, `enum`, `const`,
`anyOf`/`oneOf` (the first branch that can be satisfied; past a soft depth the cheapest branch
first, so recursive models end), `allOf` and `$ref` with siblings (merged), `items`/`prefixItems`,
`min/maxItems`, `uniqueItems`, `min/maxLength`, common `format`s, `pattern` when a candidate word
matches it, `minimum`/`maximum`/`exclusive*`/`multipleOf`, and `$ref` as a JSON pointer into the
root (`#/$defs/...`, `#/definitions/...`). Anything it cannot honour raises `SchemaError` saying why;
depth and size are bounded, so a hostile schema costs a 400, never the server.

Tool choice convention (`choose_tool`, the same for every wire format once the caller has turned
its tools into `[{"name": str, "parameters": dict}]`):

* `"none"` (or `{"type": "none"}`) → no call;
* `"required"` / `"any"` (or their dict forms) → a call to one of the tools, picked by the digest;
* a named tool (`{"type": "function", "function": {"name": ...}}`, `{"type": "function", "name":
  ...}`, `{"type": "tool", "name": ...}`, or the bare name) → a call to that tool;
* `"auto"` / absent → a call unless the conversation's last message is a tool result, so a
  follow-up turn that carries the tool's output gets a text answer;
* `allowed_tools` (OpenAI) → as its `mode`, among the listed tools only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import uuid
from typing import Any

from llmguard.sim.text import WORDS

MAX_DEPTH = 32  # nesting levels ($ref hops included) before a schema is refused
SOFT_DEPTH = 6  # past this, optional parts are left out and cheap branches are tried first
MAX_STEPS = 20_000  # schema nodes visited per instance, backtracking included
MAX_ITEMS = 256  # largest minItems / minProperties honoured
MAX_STRING = 4096  # largest minLength honoured

_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")  # cheapest first
_UNSUPPORTED = ("not", "if", "then", "else", "contains", "dependentRequired", "dependentSchemas")


class SchemaError(ValueError):
    """A JSON schema the simulator cannot satisfy; the message says why."""


class ToolChoiceError(ValueError):
    """A `tool_choice` naming a tool the request does not define, or of an unknown form."""


class _Exhausted(SchemaError):
    """The step budget ran out: never retried with another branch."""


def json_text(value: Any) -> str:
    """The compact JSON text the real APIs send for arguments and structured answers."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def instance_for(schema: Any, digest: bytes) -> Any:
    """A deterministic JSON value that validates against `schema` (raises `SchemaError`)."""
    return _Generator(schema, digest).value(schema, 0)


# -- tool choice ---------------------------------------------------------------------------------


def _choice_mode(tool_choice: Any) -> tuple[str, str | None, list[str] | None]:
    """(mode, forced tool name, allowed names) from any of the wire forms."""
    if tool_choice is None:
        return "auto", None, None
    if isinstance(tool_choice, str):
        if tool_choice in ("none", "auto"):
            return tool_choice, None, None
        if tool_choice in ("required", "any"):
            return "required", None, None
        return "named", tool_choice, None
    if not isinstance(tool_choice, dict):
        raise ToolChoiceError(f"tool_choice must be a string or an object, got {type(tool_choice).__name__}")
    kind = tool_choice.get("type")
    if kind in ("none", "auto"):
        return kind, None, None
    if kind in ("required", "any"):
        return "required", None, None
    if kind == "allowed_tools":
        spec = tool_choice.get("allowed_tools", tool_choice)
        mode = spec.get("mode", "auto") if isinstance(spec, dict) else "auto"
        names = [_tool_name(t) for t in (spec.get("tools") or [])] if isinstance(spec, dict) else []
        return ("required" if mode == "required" else "auto"), None, [n for n in names if n]
    name = _tool_name(tool_choice)
    if name:
        return "named", name, None
    raise ToolChoiceError(f"unsupported tool_choice {json_text(tool_choice)[:200]}")


def _tool_name(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return None
    function = spec.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return function["name"]
    name = spec.get("name")
    return name if isinstance(name, str) else None


def choose_tool(
    tools: list[dict[str, Any]], tool_choice: Any, digest: bytes, after_tool_result: bool = False
) -> dict[str, Any] | None:
    """The tool this turn calls, or None for a text answer (convention in the module docstring).

    `tools` is normalised: `[{"name": str, "parameters": dict}]`. `after_tool_result` says whether
    the conversation's last message is a tool result. Raises `ToolChoiceError` for a named tool
    the list does not hold.
    """
    mode, name, allowed = _choice_mode(tool_choice)
    if mode == "none" or not tools:
        return None
    if mode == "named":
        for tool in tools:
            if tool.get("name") == name:
                return tool
        raise ToolChoiceError(f"tool_choice names the tool {name!r}, which is not in tools")
    pool = tools
    if allowed is not None:
        pool = [t for t in tools if t.get("name") in allowed]
        if not pool:
            raise ToolChoiceError("tool_choice allowed_tools lists none of the request's tools")
    if mode == "auto" and after_tool_result:
        return None
    return pool[int.from_bytes(digest[8:12], "little") % len(pool)]


# -- instances -----------------------------------------------------------------------------------


def _types_of(schema: dict[str, Any]) -> list[str]:
    raw = schema.get("type")
    if raw is None:
        types = _inferred_types(schema)
    else:
        types = [raw] if isinstance(raw, str) else raw
        if not isinstance(types, list) or not types:
            raise SchemaError(f"'type' must be a type name or a non-empty list of them, got {raw!r}")
        for t in types:
            if t not in _TYPES:
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


def _matches_type(value: Any, types: list[str]) -> bool:
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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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
    return [t for t in _TYPES if t in both]


_LOWER_BOUNDS = ("minimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "maxLength", "maxItems", "maxProperties")


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
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
            keep = {_canonical(v) for v in value}
            out[key] = [v for v in out[key] if _canonical(v) in keep]
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
        elif _canonical(out[key]) != _canonical(value):
            raise SchemaError(f"allOf combines conflicting {key!r} values {out[key]!r} and {value!r}")
    return out


class _Generator:
    def __init__(self, root: Any, digest: bytes) -> None:
        self.root = root
        self.rng = random.Random(hashlib.blake2b(digest, digest_size=16).digest())
        self.steps = 0

    # -- dispatch ------------------------------------------------------------------------------

    def value(self, schema: Any, depth: int) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _Exhausted(f"the schema is too large or too recursive (more than {MAX_STEPS} steps)")
        if depth > MAX_DEPTH:
            raise SchemaError(
                f"the schema nests deeper than {MAX_DEPTH} levels, llmguard.sim's bound (or a $ref never ends)"
            )
        if schema is True:
            return self.word()
        if schema is False:
            raise SchemaError("the schema `false` accepts no value")
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {type(schema).__name__}")
        if "$ref" in schema:
            return self.value(self.follow(schema), depth + 1)
        if "allOf" in schema:
            parts = schema["allOf"]
            if not isinstance(parts, list) or not parts:
                raise SchemaError("'allOf' must be a non-empty list of schemas")
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                merged = _merge(merged, self.flat(part, depth))
            return self.value(merged, depth + 1)
        for key in _UNSUPPORTED:
            if key in schema:
                raise SchemaError(f"the keyword {key!r} is not supported by llmguard.sim")
        if "const" in schema:
            return self.constant(schema)
        if "enum" in schema:
            return self.pick_enum(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.branch(schema, key, depth)
        types = _types_of(schema)
        if depth >= SOFT_DEPTH:
            types = sorted(types, key=_TYPES.index)
        elif len(types) > 1 and "null" in types:
            types = [t for t in types if t != "null"] + ["null"]  # an Optional field gets a value
        error: SchemaError | None = None
        for t in types:
            try:
                return getattr(self, "make_" + t)(schema, depth)
            except _Exhausted:
                raise
            except SchemaError as exc:
                error = exc
        assert error is not None
        raise error

    def flat(self, schema: Any, depth: int) -> dict[str, Any]:
        """A dict schema with its top-level $ref resolved (for merging)."""
        for _ in range(MAX_DEPTH):
            if schema is True:
                return {}
            if not isinstance(schema, dict):
                raise SchemaError("allOf items must be schemas")
            if "$ref" not in schema:
                return schema
            schema = self.follow(schema)
        raise SchemaError(f"$ref chains longer than {MAX_DEPTH} hops are not supported")

    def follow(self, schema: dict[str, Any]) -> Any:
        """The schema a `$ref` points at, merged with the keywords beside the `$ref`."""
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target = self.resolve(schema["$ref"])
        if not rest:
            return target
        if target is True:
            return rest
        if isinstance(target, dict):
            return _merge(target, rest)
        return target

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"only local $ref (#/$defs/...) is supported, got {ref!r}")
        node = self.root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise SchemaError(f"unsupported $ref {ref!r}")
        for raw in pointer.split("/")[1:] if pointer else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points at nothing in the schema")
        return node

    def constant(self, schema: dict[str, Any]) -> Any:
        value = schema["const"]
        if "enum" in schema and _canonical(value) not in {_canonical(v) for v in schema["enum"]}:
            raise SchemaError("'const' is not one of the 'enum' values")
        if "type" in schema and not _matches_type(value, _types_of(schema)):
            raise SchemaError(f"'const' {value!r} does not have the schema's type {schema['type']!r}")
        return copy.deepcopy(value)

    def pick_enum(self, schema: dict[str, Any]) -> Any:
        values = schema["enum"]
        if not isinstance(values, list):
            raise SchemaError("'enum' must be a list")
        if "type" in schema or schema.get("nullable") is True:
            types = _types_of(schema)
            values = [v for v in values if _matches_type(v, types)]
        if not values:
            raise SchemaError("'enum' has no value of the schema's type")
        return copy.deepcopy(values[self.rng.randrange(len(values))])

    def branch(self, schema: dict[str, Any], key: str, depth: int) -> Any:
        branches = schema[key]
        if not isinstance(branches, list) or not branches:
            raise SchemaError(f"'{key}' must be a non-empty list of schemas")
        rest = {k: v for k, v in schema.items() if k != key}
        order = list(branches)
        if depth >= SOFT_DEPTH:
            order.sort(key=self.cost)
        error: SchemaError | None = None
        for option in order:
            try:
                merged = _merge(rest, self.flat(option, depth)) if rest else option
                return self.value(merged, depth + 1)
            except _Exhausted:
                raise
            except SchemaError as exc:
                error = exc
        if str(error).startswith("no branch of"):
            raise error  # type: ignore[misc]
        raise SchemaError(f"no branch of '{key}' can be satisfied: {error}")

    def cost(self, schema: Any) -> int:
        """How much a branch may grow: null and scalars before containers and references."""
        if not isinstance(schema, dict):
            return 0
        if "$ref" in schema or "allOf" in schema or "anyOf" in schema or "oneOf" in schema:
            return len(_TYPES)
        if "const" in schema or "enum" in schema:
            return 0
        try:
            return min(_TYPES.index(t) for t in _types_of(schema))
        except SchemaError:
            return len(_TYPES)

    # -- scalars -------------------------------------------------------------------------------

    def word(self) -> str:
        return WORDS[self.rng.randrange(len(WORDS))]

    def make_null(self, schema: dict[str, Any], depth: int) -> None:
        return None

    def make_boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def make_string(self, schema: dict[str, Any], depth: int) -> str:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if not isinstance(lo, int) or lo < 0 or hi is not None and (not isinstance(hi, int) or hi < 0):
            raise SchemaError("'minLength' and 'maxLength' must be non-negative integers")
        if hi is not None and lo > hi:
            raise SchemaError(f"minLength {lo} is greater than maxLength {hi}")
        if lo > MAX_STRING:
            raise SchemaError(f"minLength above {MAX_STRING} is not supported by llmguard.sim")
        pattern = schema.get("pattern")
        regex = None
        if pattern is not None:
            try:
                regex = re.compile(pattern)
            except (re.error, TypeError):
                raise SchemaError(f"'pattern' {pattern!r} is not a valid regular expression") from None
        candidates = [self.formatted(schema.get("format"), lo, hi) for _ in range(1 if regex is None else 40)]
        for text in candidates:
            if len(text) >= lo and (hi is None or len(text) <= hi) and (regex is None or regex.search(text)):
                return text
        if regex is not None:
            raise SchemaError(f"pattern is not supported by llmguard.sim: no generated string matches {pattern!r}")
        raise SchemaError(f"format {schema.get('format')!r} cannot fit between minLength {lo} and maxLength {hi}")

    def formatted(self, fmt: Any, lo: int, hi: int | None) -> str:
        rng, word = self.rng, self.word
        if fmt == "date-time":
            return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        if fmt == "date":
            return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if fmt == "time":
            return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        if fmt == "duration":
            return f"PT{rng.randint(1, 59)}M"
        if fmt in ("email", "idn-email"):
            return f"{word()}@example.com"
        if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
            return f"https://example.com/{word()}"
        if fmt in ("hostname", "idn-hostname"):
            return f"{word()}.example.com"
        if isinstance(fmt, str) and fmt.startswith("uuid"):
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if fmt == "ipv4":
            return f"192.0.2.{rng.randint(1, 254)}"
        if fmt == "ipv6":
            return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        words = [word() for _ in range(rng.randint(1, 3))]
        text = " ".join(words)
        while len(text) < lo:
            text += " " + word()
        return text[:hi] if hi is not None and len(text) > hi else text

    def bounds(self, schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
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

    def make_integer(self, schema: dict[str, Any], depth: int) -> int:
        lo_f, lo_x, hi_f, hi_x = self.bounds(schema)
        lo = None if lo_f is None else (math.floor(lo_f) + 1 if lo_x else math.ceil(lo_f))
        hi = None if hi_f is None else (math.ceil(hi_f) - 1 if hi_x else math.floor(hi_f))
        if lo is None and hi is None:
            lo, hi = 1, 100
        elif lo is None:
            lo = hi - 100  # type: ignore[operator]
        elif hi is None:
            hi = lo + 100
        assert lo is not None and hi is not None
        if lo > hi:
            raise SchemaError(f"no integer lies between minimum {lo_f} and maximum {hi_f}")
        step = schema.get("multipleOf")
        if step is None:
            return self.rng.randint(lo, hi)
        if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
            raise SchemaError("'multipleOf' must be a positive number")
        if float(step).is_integer():
            m = int(step)
            first, last = -(-lo // m), hi // m
            if first > last:
                raise SchemaError(f"no multiple of {step} lies between {lo} and {hi}")
            return self.rng.randint(first, last) * m
        for value in range(lo, min(hi, lo + 10_000) + 1):
            if (value / step).is_integer():
                return value
        raise SchemaError(f"no integer multiple of {step} lies between {lo} and {hi}")

    def make_number(self, schema: dict[str, Any], depth: int) -> float | int:
        lo, lo_x, hi, hi_x = self.bounds(schema)
        step = schema.get("multipleOf")
        if step is not None:
            if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
                raise SchemaError("'multipleOf' must be a positive number")
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
        if lo is None and hi is None:
            return self.rng.randint(0, 99) + 0.5
        if lo is None:
            lo = hi - 100  # type: ignore[operator]
        if hi is None:
            hi = lo + 100
        if lo > hi or lo == hi and (lo_x or hi_x):
            raise SchemaError(f"no number lies between minimum {lo} and maximum {hi}")
        if lo == hi:
            return lo
        value = round(lo + (hi - lo) * self.rng.uniform(0.1, 0.9), 2)
        if not (lo < value < hi):
            value = lo + (hi - lo) / 2
        if not (lo < value < hi):
            raise SchemaError(f"no number lies strictly between {lo} and {hi}")
        return value

    # -- containers ----------------------------------------------------------------------------

    def make_array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if not isinstance(lo, int) or lo < 0 or hi is not None and (not isinstance(hi, int) or hi < 0):
            raise SchemaError("'minItems' and 'maxItems' must be non-negative integers")
        if hi is not None and lo > hi:
            raise SchemaError(f"minItems {lo} is greater than maxItems {hi}")
        if lo > MAX_ITEMS:
            raise SchemaError(f"minItems above {MAX_ITEMS} is not supported by llmguard.sim")
        items = schema.get("items", True)
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft 4-2019 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix or []
        if not isinstance(prefix, list):
            raise SchemaError("'prefixItems' must be a list of schemas")
        room = len(prefix) if items is False else MAX_ITEMS
        if hi is not None:
            room = min(room, hi)
        if lo > room:
            raise SchemaError(f"minItems {lo} cannot be met: the array holds at most {room} items")
        want = lo if depth >= SOFT_DEPTH else max(lo, min(room, 1 + self.rng.randrange(3)))
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        seen: set[str] = set()
        while len(out) < want:
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            try:
                value = self.item(sub, depth, unique, seen)
            except _Exhausted:
                raise
            except SchemaError:
                if len(out) < lo:
                    raise
                break
            out.append(value)
        return out

    def item(self, schema: Any, depth: int, unique: bool, seen: set[str]) -> Any:
        for _ in range(8 if unique else 1):
            value = self.value(schema, depth + 1)
            key = _canonical(value)
            if not unique or key not in seen:
                seen.add(key)
                return value
        raise SchemaError("uniqueItems cannot be met: the item schema allows too few distinct values")

    def make_object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(props, dict):
            raise SchemaError("'properties' must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError("'required' must be a list of property names")
        lo, hi = schema.get("minProperties", 0), schema.get("maxProperties")
        if hi is not None and len(set(required)) > hi:
            raise SchemaError(f"{len(set(required))} required properties exceed maxProperties {hi}")
        if isinstance(lo, int) and lo > MAX_ITEMS:
            raise SchemaError(f"minProperties above {MAX_ITEMS} is not supported by llmguard.sim")
        self.check_pattern_properties(schema, props)
        out: dict[str, Any] = {}
        for name in required:
            if name in out:
                continue
            if name in props:
                out[name] = self.value(props[name], depth + 1)
            elif extra is False:
                raise SchemaError(f"{name!r} is required but not allowed (additionalProperties is false)")
            else:
                out[name] = self.value(extra, depth + 1)
        optional = [name for name in props if name not in out]
        limit = hi if hi is not None else len(props) + len(required)
        take_optional = depth < SOFT_DEPTH
        for name in optional:
            if len(out) >= limit or not take_optional and len(out) >= lo:
                break
            try:
                out[name] = self.value(props[name], depth + 1)
            except _Exhausted:
                raise
            except SchemaError:
                continue  # an optional property we cannot fill is simply left out
        while len(out) < lo:
            if extra is False:
                raise SchemaError(f"minProperties {lo} cannot be met with additionalProperties false")
            name = self.word()
            while name in out or name in props:
                name = f"{self.word()}_{len(out)}"
            out[name] = self.value(extra, depth + 1)
        return out

    @staticmethod
    def check_pattern_properties(schema: dict[str, Any], props: dict[str, Any]) -> None:
        patterns = schema.get("patternProperties")
        if not patterns:
            return
        for pattern in patterns:
            try:
                if any(re.search(pattern, name) for name in props):
                    raise SchemaError("'patternProperties' that match named properties are not supported")
            except re.error:
                raise SchemaError(f"'patternProperties' key {pattern!r} is not a valid regex") from None
