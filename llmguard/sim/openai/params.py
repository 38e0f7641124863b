"""The parts of a chat, legacy-completion or embeddings request that need checking: integers in range,
function tools, the response format, prompts and inputs. Each check raises the real API's 400
(`BadRequest`) or returns the part in the shape the routes use."""

from __future__ import annotations

import json
import re
from typing import Any

from llmguard.sim.openai.errors import BadRequest, invalid_type, invalid_value, missing
from llmguard.sim.structured import SchemaError, instance_for

MAX_N = 128
LEGACY_MAX_TOKENS = 16  # the legacy completions endpoint's default
LOGPROBS = "logprobs are not supported by llmguard.sim"
JSON_OBJECT_SCHEMA = {  # what `response_format: json_object` answers with
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 12},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["answer", "confidence", "tags"],
    "additionalProperties": False,
}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NO_PARAMETERS = {"type": "object", "properties": {}}


def check_integer(field: str, value: Any, low: int, high: int | None = None) -> int:
    """`value` when it is an integer in range, else OpenAI's 400 for it."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_type(field, "an integer", type(value).__name__)
    if value < low:
        raise BadRequest(
            f"Invalid '{field}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            field,
            "integer_below_min_value",
        )
    if high is not None and value > high:
        raise BadRequest(
            f"Invalid '{field}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            field,
            "integer_above_max_value",
        )
    return value


def _check_satisfiable(schema: Any, message: str, param: str, code: str | None = None) -> None:
    """The 400 `message: <why>` unless the simulator can build a value for `schema`."""
    try:
        instance_for(schema, b"\x00" * 16)
    except SchemaError as exc:
        raise BadRequest(f"{message}: {exc}", param, code) from None


def chat_tools(raw: Any) -> list[dict[str, Any]]:
    """The request's function tools as `[{"name", "parameters"}]`, each schema checked satisfiable."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_type("tools", "an array", type(raw).__name__)
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "custom":
            raise BadRequest("custom tools are not supported by llmguard.sim", f"{where}.type")
        if kind != "function":
            raise invalid_value(f"{where}.type", kind, "Supported values are: 'function' and 'custom'.")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise missing(f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str):
            raise missing(f"{where}.function.name")
        if not _TOOL_NAME.fullmatch(name):
            raise BadRequest(
                f"Invalid '{where}.function.name': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.function.name",
                "invalid_value",
            )
        parameters = function.get("parameters", _NO_PARAMETERS)
        _check_satisfiable(
            parameters,
            f"Invalid schema for function '{name}'",
            f"{where}.function.parameters",
            "invalid_function_parameters",
        )
        tools.append({"name": name, "parameters": parameters})
    return tools


def response_format(raw: Any, messages: list[Any]) -> dict[str, Any] | None:
    """The schema an answer must satisfy (None: plain text), or the 400 the real API gives."""
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        if "json" not in json.dumps(messages, default=str).lower():
            raise BadRequest(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                "messages",
            )
        return JSON_OBJECT_SCHEMA
    if kind != "json_schema":
        raise invalid_value(
            "response_format.type", kind, "Supported values are: 'text', 'json_object' and 'json_schema'."
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise missing("response_format.json_schema")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise missing("response_format.json_schema.name")
    schema = spec.get("schema", {"type": "object"})
    _check_satisfiable(schema, f"Invalid schema for response_format '{name}'", "response_format")
    return schema


def legacy_prompts(raw: Any) -> list[tuple[Any, int]] | None:
    """[(text or token list, token count for token lists)] of a legacy `prompt`, or None if invalid."""
    if isinstance(raw, str):
        return [(raw, 0)]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [(raw, len(raw))]
    return embedding_inputs(raw)


def embedding_inputs(raw: Any) -> list[tuple[Any, int]] | None:
    """[(text or token list, token count for token lists)], or None when the input is invalid."""
    if isinstance(raw, str):
        return [(raw, 0)]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) for x in raw):
        return [(raw, len(raw))]
    out: list[tuple[Any, int]] = []
    for item in raw:
        if isinstance(item, str):
            out.append((item, 0))
        elif isinstance(item, list) and item and all(isinstance(x, int) for x in item):
            out.append((item, len(item)))
        else:
            return None
    return out
