"""The checked parts of a Responses API request: `input` items as chat-shaped messages, tool calls
paired with their outputs, function tools, the text format and the reasoning settings. Each check
raises the real API's 400 (`BadRequest`) or returns the part as the planner uses it."""

from __future__ import annotations

from typing import Any

from llmguard.sim.completion import is_reasoning_model
from llmguard.sim.openai.errors import BadRequest, invalid_type, invalid_value, missing

_ROLES = ("assistant", "system", "developer", "user")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_ITEM_TYPES = "'message', 'function_call', 'function_call_output' and 'reasoning'"


def type_name(value: Any) -> str:
    """A JSON value's type as the API's messages word it ("a string", "an array", "null"...)."""
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


def input_messages(raw: Any) -> tuple[list[dict[str, Any]], bool]:
    """(chat-shaped messages, whether the last item is a tool result) for `input`; see `responses.py`."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}], False
    if not isinstance(raw, list):
        raise invalid_type("input", "a string or an array of input items", type_name(raw))
    messages: list[dict[str, Any]] = []
    last_is_output = False
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(where, "an object", type_name(item))
        kind = item.get("type", "message")
        last_is_output = kind == "function_call_output"
        message = _item_message(where, kind, item)
        if message is not None:
            messages.append(message)
    return messages, last_is_output


def _item_message(where: str, kind: Any, item: dict[str, Any]) -> dict[str, Any] | None:
    """The chat message an input item stands for (None: a reasoning item, not counted)."""
    if kind == "message":
        role, content = item.get("role"), item.get("content")
        if role not in _ROLES:
            raise invalid_value(
                f"{where}.role", role, "Supported values are: 'assistant', 'system', 'developer', and 'user'."
            )
        if not isinstance(content, str | list):
            raise missing(f"{where}.content")
        return {"role": role, "content": content}
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise missing(f"{where}.{key}")
        call = {"name": item["name"], "arguments": item["arguments"]}
        return {"role": "assistant", "tool_calls": [{"id": item["call_id"], "type": "function", "function": call}]}
    if kind == "function_call_output":
        for key in ("call_id", "output"):
            if key not in item or not isinstance(item[key], str | list):
                raise missing(f"{where}.{key}")
        return {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
    if kind != "reasoning":
        raise invalid_value(f"{where}.type", kind, f"llmguard.sim supports input items of type {_ITEM_TYPES}.")
    return None


def check_tool_calls(conversation: list[dict[str, Any]]) -> None:
    """Every tool output answers a call, and every call has its output, as the real API insists."""
    calls: list[str] = []
    answered: set[str] = set()
    for message in conversation:
        for call in message.get("tool_calls") or ():
            calls.append(call["id"])
        if message.get("role") == "tool":
            cid = message["tool_call_id"]
            if cid not in calls:
                raise BadRequest(f"No tool call found for function call output with call_id {cid}.", "input")
            answered.add(cid)
    for cid in calls:
        if cid not in answered:
            raise BadRequest(f"No tool output found for function call {cid}.", "input")


def function_tools(raw: Any) -> list[dict[str, Any]]:
    """The request's tools as the response echoes them (function tools only)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_type("tools", "an array", type_name(raw))
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise invalid_value(f"tools[{i}].type", kind, "llmguard.sim supports only tools of type 'function'.")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise missing(f"tools[{i}].name")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest(
                f"Invalid type for 'tools[{i}].parameters': expected an object.",
                f"tools[{i}].parameters",
                "invalid_type",
            )
        strict = tool.get("strict")
        tools.append(
            {
                "type": "function",
                "name": tool["name"],
                "description": tool.get("description"),
                "parameters": parameters,
                "strict": True if strict is None else strict,
            }
        )
    return tools


def text_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The `text.format` object, or None for plain text."""
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict):
        raise invalid_type("text", "an object", type_name(text))
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return fmt
    if kind != "json_schema":
        raise invalid_value("text.format.type", kind, "Supported values are: 'text', 'json_schema', and 'json_object'.")
    for key, want in (("name", str), ("schema", dict)):
        if not isinstance(fmt.get(key), want):
            raise missing(f"text.format.{key}")
    return fmt


def reasoning_echo(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The response's `reasoning` object (effort defaults to medium on reasoning models)."""
    raw = body.get("reasoning")
    if raw is not None and not isinstance(raw, dict):
        raise invalid_type("reasoning", "an object", type_name(raw))
    raw = raw or {}
    effort = raw.get("effort")
    if effort is not None and effort not in _EFFORTS:
        supported = ", ".join(f"'{e}'" for e in _EFFORTS)
        raise invalid_value("reasoning.effort", effort, f"Supported values are: {supported}.")
    if not is_reasoning_model(model):
        if effort is not None:
            raise BadRequest(
                "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                "reasoning.effort",
                "unsupported_parameter",
            )
        return {"effort": None, "summary": None}
    return {"effort": effort or "medium", "summary": raw.get("summary")}
