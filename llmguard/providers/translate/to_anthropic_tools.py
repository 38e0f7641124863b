"""OpenAI tools, tool_choice, parallel_tool_calls and response_format as Anthropic tools.

*Structured output* has no Anthropic request field the simulator and all models share, so it is
approximated the way LiteLLM does it: one tool whose `input_schema` is the schema (named after it;
`json_answer` for json_object), forced by `tool_choice`. `Translated.json_tool` names that tool; pass
it to the response translators and its input comes back as the message content (JSON text) with
finish_reason `stop`. The schema's root must be an object, and the request may have no tools of its
own."""

from __future__ import annotations

from typing import Any

from llmguard.providers.translate.common import SAME_PROVIDER, TO_ANTHROPIC, Log, TranslationError
from llmguard.providers.translate.shapes import drop_extra, expect_dict, expect_list, expect_str, malformed

JSON_OBJECT_TOOL = "json_answer"  # the forced tool standing for response_format json_object
_ANY_OBJECT = {"type": "object", "properties": {}}


def translate_tools(body: dict[str, Any], out: dict[str, Any], log: Log) -> str | None:
    """Fill `out` with tools and tool_choice; the forced tool's name for structured output, or None."""
    tools: list[dict[str, Any]] = []
    for i, raw in enumerate(expect_list(body.get("tools") or [], "tools")):
        where = f"tools[{i}]"
        tool = expect_dict(raw, where, "a tool object")
        if tool.get("type") != "function":
            raise TranslationError(
                f"{TO_ANTHROPIC}: {where} is a {tool.get('type')!r} tool",
                f"Anthropic has function tools only; {SAME_PROVIDER}",
                where,
            )
        function = expect_dict(tool.get("function"), f"{where}.function")
        spec: dict[str, Any] = {"name": expect_str(function.get("name"), f"{where}.function.name")}
        if function.get("description") is not None:
            spec["description"] = expect_str(function["description"], f"{where}.function.description")
        parameters = function.get("parameters")
        spec["input_schema"] = (
            dict(_ANY_OBJECT) if parameters is None else expect_dict(parameters, f"{where}.function.parameters")
        )
        drop_extra(
            function,
            ("name", "description", "parameters"),
            f"{where}.function",
            log,
            "strict function schemas have no Anthropic equivalent: the model is asked, not forced, to match",
        )
        tools.append(spec)
    choice = body.get("tool_choice")
    json_tool = _openai_response_format(body.get("response_format"), bool(tools), out, log)
    if json_tool is not None:
        if choice is not None:
            log.drop("tool_choice")
        if body.get("parallel_tool_calls") is not None:
            log.drop("parallel_tool_calls")
        return json_tool
    if tools:
        out["tools"] = tools
    anthropic_choice: dict[str, Any] | None = None
    if choice is not None:
        anthropic_choice = _openai_tool_choice(choice)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise malformed("parallel_tool_calls", "a boolean", parallel)
    if parallel is False:
        if not tools:
            log.drop("parallel_tool_calls")
        elif anthropic_choice is None or anthropic_choice["type"] != "none":
            anthropic_choice = {**(anthropic_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if anthropic_choice is not None:
        out["tool_choice"] = anthropic_choice
    return None


def _openai_tool_choice(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = expect_dict(choice.get("function"), "tool_choice.function")
        return {"type": "tool", "name": expect_str(function.get("name"), "tool_choice.function.name")}
    if isinstance(choice, dict) and choice.get("type") in ("allowed_tools", "custom"):
        raise TranslationError(
            f"{TO_ANTHROPIC}: tool_choice of type {choice['type']!r}",
            "Anthropic has auto, any, none or one named tool: send only the allowed tools with "
            "tool_choice 'auto' or 'required'",
            "tool_choice",
        )
    raise malformed("tool_choice", "'auto', 'none', 'required' or a named function", choice)


def _openai_response_format(raw: Any, has_tools: bool, out: dict[str, Any], log: Log) -> str | None:
    if raw is None:
        return None
    spec = expect_dict(raw, "response_format")
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        raise malformed("response_format.type", "'text', 'json_object' or 'json_schema'", kind)
    if has_tools:
        raise TranslationError(
            f"{TO_ANTHROPIC}: response_format {kind} together with tools",
            "structured output is approximated by forcing one tool call, which leaves the request's own "
            f"tools unusable: {SAME_PROVIDER}, or drop the response_format",
            "response_format",
        )
    if kind == "json_object":
        name, schema, description = JSON_OBJECT_TOOL, {"type": "object"}, "Give the answer as a JSON object."
    else:
        schema_spec = expect_dict(spec.get("json_schema"), "response_format.json_schema")
        name = expect_str(schema_spec.get("name"), "response_format.json_schema.name")
        schema = expect_dict(schema_spec.get("schema", {"type": "object"}), "response_format.json_schema.schema")
        description = schema_spec.get("description") or "Give the answer in this shape."
        expect_str(description, "response_format.json_schema.description")
        drop_extra(schema_spec, ("name", "schema", "description"), "response_format.json_schema", log)
        if schema.get("type") != "object":
            raise TranslationError(
                f"{TO_ANTHROPIC}: response_format json_schema whose root is not an object "
                f"(type {schema.get('type')!r})",
                "Anthropic tool inputs are objects: wrap the schema in an object property",
                "response_format.json_schema.schema",
            )
    out["tools"] = [{"name": name, "description": description, "input_schema": schema}]
    out["tool_choice"] = {"type": "tool", "name": name}
    log.note(
        f"response_format {kind} is approximated by a forced tool call {name!r}; "
        "its input comes back as the message content"
    )
    return name
