"""Structured answers: JSON values that satisfy a JSON schema, and which tool a turn calls.

The parts: `generator.py` walks a schema (`instance_for`), `scalars.py` makes its strings and
numbers, `keywords.py` reads and merges keywords, `tool_choice.py` decides the tool a turn calls.

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

from llmguard.sim.structured.common import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_STEPS,
    MAX_STRING,
    SOFT_DEPTH,
    SchemaError,
    ToolChoiceError,
    json_text,
)
from llmguard.sim.structured.generator import instance_for
from llmguard.sim.structured.tool_choice import choose_tool

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_STEPS",
    "MAX_STRING",
    "SOFT_DEPTH",
    "SchemaError",
    "ToolChoiceError",
    "choose_tool",
    "instance_for",
    "json_text",
]
