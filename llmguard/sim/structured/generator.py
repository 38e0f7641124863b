"""`instance_for`: walk a schema and build a value that validates against it.

The walk resolves `$ref` (JSON pointers into the root), merges `allOf`, tries `anyOf`/`oneOf`
branches in order (cheapest first past `SOFT_DEPTH`), and builds arrays and objects here; scalars
come from `scalars.py`. Depth and visited nodes are bounded, so a hostile schema costs a 400.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
from typing import Any

from llmguard.sim.structured.common import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_STEPS,
    SOFT_DEPTH,
    Exhausted,
    SchemaError,
    canonical,
)
from llmguard.sim.structured.keywords import TYPES, UNSUPPORTED, matches_type, merge, size_bounds, types_of
from llmguard.sim.structured.scalars import SCALARS, word


def instance_for(schema: Any, digest: bytes) -> Any:
    """A deterministic JSON value that validates against `schema` (raises `SchemaError`)."""
    return _Generator(schema, digest).value(schema, 0)


class _Generator:
    def __init__(self, root: Any, digest: bytes) -> None:
        self.root = root
        self.rng = random.Random(hashlib.blake2b(digest, digest_size=16).digest())
        self.steps = 0

    # -- dispatch ------------------------------------------------------------------------------

    def value(self, schema: Any, depth: int) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Exhausted(f"the schema is too large or too recursive (more than {MAX_STEPS} steps)")
        if depth > MAX_DEPTH:
            raise SchemaError(
                f"the schema nests deeper than {MAX_DEPTH} levels, llmguard.sim's bound (or a $ref never ends)"
            )
        if schema is True:
            return word(self.rng)
        if schema is False:
            raise SchemaError("the schema `false` accepts no value")
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {type(schema).__name__}")
        if "$ref" in schema:
            return self.value(self.follow(schema), depth + 1)
        if "allOf" in schema:
            return self.value(self.all_of(schema, depth), depth + 1)
        for key in UNSUPPORTED:
            if key in schema:
                raise SchemaError(f"the keyword {key!r} is not supported by llmguard.sim")
        if "const" in schema:
            return self.constant(schema)
        if "enum" in schema:
            return self.pick_enum(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.branch(schema, key, depth)
        return self.typed(schema, depth)

    def typed(self, schema: dict[str, Any], depth: int) -> Any:
        """A value of the first of the schema's types that can be made."""
        types = types_of(schema)
        if depth >= SOFT_DEPTH:
            types = sorted(types, key=TYPES.index)
        elif len(types) > 1 and "null" in types:
            types = [t for t in types if t != "null"] + ["null"]  # an Optional field gets a value
        error: SchemaError | None = None
        for t in types:
            try:
                if t == "array":
                    return self.make_array(schema, depth)
                if t == "object":
                    return self.make_object(schema, depth)
                return SCALARS[t](self.rng, schema)
            except Exhausted:
                raise
            except SchemaError as exc:
                error = exc
        assert error is not None
        raise error

    def all_of(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        parts = schema["allOf"]
        if not isinstance(parts, list) or not parts:
            raise SchemaError("'allOf' must be a non-empty list of schemas")
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            merged = merge(merged, self.flat(part, depth))
        return merged

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
            return merge(target, rest)
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
        if "enum" in schema and canonical(value) not in {canonical(v) for v in schema["enum"]}:
            raise SchemaError("'const' is not one of the 'enum' values")
        if "type" in schema and not matches_type(value, types_of(schema)):
            raise SchemaError(f"'const' {value!r} does not have the schema's type {schema['type']!r}")
        return copy.deepcopy(value)

    def pick_enum(self, schema: dict[str, Any]) -> Any:
        values = schema["enum"]
        if not isinstance(values, list):
            raise SchemaError("'enum' must be a list")
        if "type" in schema or schema.get("nullable") is True:
            types = types_of(schema)
            values = [v for v in values if matches_type(v, types)]
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
                merged = merge(rest, self.flat(option, depth)) if rest else option
                return self.value(merged, depth + 1)
            except Exhausted:
                raise
            except SchemaError as exc:
                error = exc
        if str(error).startswith("no branch of"):
            assert error is not None
            raise error
        raise SchemaError(f"no branch of '{key}' can be satisfied: {error}")

    def cost(self, schema: Any) -> int:
        """How much a branch may grow: null and scalars before containers and references."""
        if not isinstance(schema, dict):
            return 0
        if "$ref" in schema or "allOf" in schema or "anyOf" in schema or "oneOf" in schema:
            return len(TYPES)
        if "const" in schema or "enum" in schema:
            return 0
        try:
            return min(TYPES.index(t) for t in types_of(schema))
        except SchemaError:
            return len(TYPES)

    # -- containers ----------------------------------------------------------------------------

    def make_array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        lo, hi = size_bounds(schema, "minItems", "maxItems", MAX_ITEMS)
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
            except Exhausted:
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
            key = canonical(value)
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
        _check_pattern_properties(schema, props)
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
        self.add_optional(out, props, hi if hi is not None else len(props) + len(required), lo, depth)
        while len(out) < lo:
            if extra is False:
                raise SchemaError(f"minProperties {lo} cannot be met with additionalProperties false")
            name = word(self.rng)
            while name in out or name in props:
                name = f"{word(self.rng)}_{len(out)}"
            out[name] = self.value(extra, depth + 1)
        return out

    def add_optional(self, out: dict[str, Any], props: dict[str, Any], limit: int, lo: Any, depth: int) -> None:
        """Fill the optional properties (all of them above `SOFT_DEPTH`, else only up to `lo`)."""
        take_optional = depth < SOFT_DEPTH
        for name in [name for name in props if name not in out]:
            if len(out) >= limit or not take_optional and len(out) >= lo:
                break
            try:
                out[name] = self.value(props[name], depth + 1)
            except Exhausted:
                raise
            except SchemaError:
                continue  # an optional property we cannot fill is simply left out


def _check_pattern_properties(schema: dict[str, Any], props: dict[str, Any]) -> None:
    patterns = schema.get("patternProperties")
    if not patterns:
        return
    for pattern in patterns:
        try:
            if any(re.search(pattern, name) for name in props):
                raise SchemaError("'patternProperties' that match named properties are not supported")
        except re.error:
            raise SchemaError(f"'patternProperties' key {pattern!r} is not a valid regex") from None
