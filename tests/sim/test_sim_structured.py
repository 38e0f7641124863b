"""llmguard.sim.structured: generated instances validate (jsonschema) and tool choice follows its rule."""

from __future__ import annotations

import datetime
import enum
from typing import Any, Literal, Optional

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import to_strict_json_schema

from llmguard.sim.structured import (
    MAX_DEPTH,
    SchemaError,
    ToolChoiceError,
    choose_tool,
    instance_for,
    json_text,
)
from llmguard.sim.text import WORDS

DIGESTS = [bytes([i]) * 16 for i in range(12)]


def check(schema: Any, value: Any) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Line(pydantic.BaseModel):
    sku: str
    quantity: int = pydantic.Field(ge=1, le=9)
    price: float = pydantic.Field(gt=0, lt=100)


class Node(pydantic.BaseModel):
    label: str
    children: list[Node] = []
    next: Optional[Node] = None  # noqa: UP045 - the Optional spelling pydantic users write


class Order(pydantic.BaseModel):
    id: int
    color: Color
    status: Literal["open", "closed"]
    lines: list[Line] = pydantic.Field(min_length=1, max_length=3)
    note: Optional[str]  # noqa: UP045
    placed: datetime.datetime
    day: datetime.date
    ref: pydantic.UUID4
    tree: Node


@pytest.mark.parametrize("model", [Order, Node, Line])
@pytest.mark.parametrize("strict", [False, True])
def test_pydantic_schemas_validate_and_parse(model, strict):
    schema = to_strict_json_schema(model) if strict else model.model_json_schema()
    texts = set()
    for digest in DIGESTS:
        value = instance_for(schema, digest)
        check(schema, value)
        model.model_validate_json(json_text(value))
        texts.add(json_text(value))
        assert instance_for(schema, digest) == value  # deterministic
    assert len(texts) > 1  # the digest varies the answer


def test_recursive_model_terminates_below_the_depth_bound():
    value = instance_for(Node.model_json_schema(), b"\x07" * 16)

    def depth(node: dict[str, Any]) -> int:
        kids = [*node.get("children", []), *([node["next"]] if node.get("next") else [])]
        return 1 + max((depth(k) for k in kids), default=0)

    assert 1 <= depth(value) < MAX_DEPTH


def test_strings_are_sim_words():
    value = instance_for({"type": "string"}, DIGESTS[3])
    assert value and all(word in WORDS for word in value.split(" "))


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"const": {"a": [1, 2]}}, {"a": [1, 2]}),
        ({"type": "null"}, None),
        ({"enum": ["only"]}, "only"),
        ({"type": "integer", "minimum": 7, "maximum": 7}, 7),
        ({"type": "integer", "exclusiveMinimum": 6, "exclusiveMaximum": 8}, 7),
        ({"type": "number", "minimum": 2.5, "maximum": 2.5}, 2.5),
        ({"type": "string", "maxLength": 0}, ""),
        ({"type": "array", "maxItems": 0}, []),
        ({"type": "object", "additionalProperties": False}, {}),
        ({"type": ["null"]}, None),
        ({"anyOf": [{"type": "integer", "minimum": 3, "maximum": 1}, {"const": "b"}]}, "b"),
        ({"$defs": {"x": {"const": 5}}, "$ref": "#/$defs/x"}, 5),
        ({"definitions": {"a~b": {"const": 6}}, "$ref": "#/definitions/a~0b"}, 6),
        ({"allOf": [{"type": "integer", "minimum": 4}, {"maximum": 4}]}, 4),
        ({"type": "string", "pattern": "^[a-z]+$", "const": "abc"}, "abc"),
    ],
)
def test_literal_instances(schema, expected):
    value = instance_for(schema, DIGESTS[0])
    assert value == expected
    check(schema, value)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]},
        {"type": "object", "required": ["b"], "additionalProperties": {"type": "integer", "minimum": 3}},
        {"type": "object", "minProperties": 3, "properties": {"a": {"type": "boolean"}}},
        {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": True},
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "array",
            "items": [{"const": 1}],
            "additionalItems": False,
            "minItems": 1,
        },
        {"type": ["string", "null"], "minLength": 2, "maxLength": 4},
        {"type": "number", "multipleOf": 0.25, "minimum": 1, "maximum": 2},
        {"type": "integer", "multipleOf": 5, "minimum": 11, "maximum": 19},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
        {"oneOf": [{"type": "string", "format": "email"}, {"type": "integer"}]},
        {"type": "string", "format": "uri"},
        {"type": "string", "format": "ipv4"},
        {"type": "string", "pattern": "^[a-z]+$"},
        {"type": "string", "nullable": True},
        {
            "$ref": "#/$defs/a",
            "$defs": {"a": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "required": ["x"],
        },
        True,
        {},
    ],
)
def test_instances_validate(schema):
    for digest in DIGESTS:
        check(schema, instance_for(schema, digest))


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 1}, "between minimum 5 and maximum 1"),
        ({"type": "string", "pattern": "^[0-9]{5}$"}, "pattern is not supported"),
        ({"type": "string", "minLength": 5, "maxLength": 2}, "minLength 5 is greater than maxLength 2"),
        ({"type": "array", "minItems": 4, "maxItems": 2}, "minItems 4 is greater than maxItems 2"),
        ({"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}}, "deeper than"),
        ({"$ref": "#/$defs/missing"}, "points at nothing"),
        ({"$ref": "https://example.com/schema.json"}, "only local $ref"),
        ({"not": {"type": "string"}}, "'not' is not supported"),
        ({"type": "wat"}, "unknown type 'wat'"),
        ({"enum": [1, 2], "type": "string"}, "no value of the schema's type"),
        (
            {"type": "object", "required": ["a"], "additionalProperties": False},
            "'a' is required but not allowed",
        ),
        ({"anyOf": [{"type": "integer", "minimum": 2, "maximum": 1}, False]}, "no branch of 'anyOf'"),
        ({"type": "array", "items": {"const": 1}, "minItems": 2, "uniqueItems": True}, "uniqueItems"),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "incompatible types"),
        (False, "accepts no value"),
    ],
)
def test_unsatisfiable_schemas_say_why(schema, why):
    with pytest.raises(SchemaError) as info:
        instance_for(schema, DIGESTS[0])
    assert why in str(info.value)


def test_hostile_schemas_are_refused_quickly():
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5000):  # far past Python's recursion limit if it were followed naively
        deep = {"type": "array", "minItems": 1, "items": deep}
    with pytest.raises(SchemaError, match="deeper than"):
        instance_for(deep, DIGESTS[0])
    branchy = {
        "$defs": {"a": {"anyOf": [{"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/a"}}] * 2}},
        "$ref": "#/$defs/a",
    }
    with pytest.raises(SchemaError):
        instance_for(branchy, DIGESTS[0])
    with pytest.raises(SchemaError, match="not supported"):
        instance_for({"type": "array", "minItems": 10**9}, DIGESTS[0])
    with pytest.raises(SchemaError, match="not supported"):
        instance_for({"type": "string", "minLength": 10**9}, DIGESTS[0])


def test_json_text_is_compact():
    assert json_text({"a": [1, "é"]}) == '{"a":[1,"é"]}'


# -- a bounded family of random schemas ----------------------------------------------------------

scalars = st.one_of(
    st.just({"type": "string"}),
    st.builds(
        lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
        st.integers(0, 30),
        st.integers(0, 10),
    ),
    st.builds(
        lambda lo, extra: {"type": "integer", "minimum": lo, "maximum": lo + extra},
        st.integers(-1000, 1000),
        st.integers(0, 50),
    ),
    st.builds(
        lambda lo, extra: {"type": "number", "exclusiveMinimum": lo, "maximum": lo + extra},
        st.floats(-1e3, 1e3),
        st.floats(0.01, 10),
    ),
    st.just({"type": "boolean"}),
    st.just({"type": ["string", "null"]}),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), min_size=1, max_size=4).map(lambda v: {"enum": v}),
    st.sampled_from(["date-time", "date", "email", "uuid", "hostname"]).map(lambda f: {"type": "string", "format": f}),
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    objects = st.builds(
        lambda props, n, closed: {
            "type": "object",
            "properties": props,
            "required": sorted(props)[:n],
            "additionalProperties": not closed,
        },
        st.dictionaries(st.sampled_from(WORDS[:40]), children, max_size=4),
        st.integers(0, 4),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, lo, extra: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + extra},
        children,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    unions = st.lists(children, min_size=1, max_size=3).map(lambda b: {"anyOf": b})
    return st.one_of(objects, arrays, unions)


schemas = st.recursive(scalars, _extend, max_leaves=12)


@settings(max_examples=50, deadline=None)
@given(schema=schemas, digest=st.binary(min_size=16, max_size=16))
def test_random_schemas_validate(schema, digest):
    check(schema, instance_for(schema, digest))


# -- tool choice ---------------------------------------------------------------------------------

TOOLS = [
    {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
]


@pytest.mark.parametrize("choice", [None, "auto", {"type": "auto"}])
def test_auto_calls_a_tool_unless_the_last_message_is_a_tool_result(choice):
    picked = choose_tool(TOOLS, choice, DIGESTS[1])
    assert picked in TOOLS
    assert choose_tool(TOOLS, choice, DIGESTS[1], after_tool_result=True) is None


@pytest.mark.parametrize("choice", ["none", {"type": "none"}])
def test_none_never_calls(choice):
    assert choose_tool(TOOLS, choice, DIGESTS[1]) is None


@pytest.mark.parametrize("choice", ["required", "any", {"type": "any"}, {"type": "required"}])
def test_required_always_calls(choice):
    assert choose_tool(TOOLS, choice, DIGESTS[1], after_tool_result=True) in TOOLS


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "function": {"name": "get_time"}},  # OpenAI chat
        {"type": "function", "name": "get_time"},  # OpenAI Responses
        {"type": "tool", "name": "get_time"},  # Anthropic
        "get_time",
    ],
)
def test_named_tool_is_called(choice):
    for digest in DIGESTS:
        assert choose_tool(TOOLS, choice, digest, after_tool_result=True) == TOOLS[1]


def test_allowed_tools_and_choice_by_digest():
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
    }
    assert all(choose_tool(TOOLS, allowed, d, True) == TOOLS[0] for d in DIGESTS)
    assert {choose_tool(TOOLS, "required", d)["name"] for d in DIGESTS} == {"get_weather", "get_time"}
    assert choose_tool([], "required", DIGESTS[0]) is None


def test_unknown_named_tool_is_an_error():
    with pytest.raises(ToolChoiceError, match="'nope'"):
        choose_tool(TOOLS, {"type": "function", "function": {"name": "nope"}}, DIGESTS[0])
