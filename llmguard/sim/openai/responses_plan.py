"""A Responses API call planned before any state changes: `plan_call` validates the request (400s
consume no fault) and decides whether the turn calls a tool, answers in JSON or in text; `answer`
builds the output items, their stream pieces and the output tokens, cut at `max_output_tokens`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmguard.sim.completion import is_reasoning_model, make_completion
from llmguard.sim.openai import responses_wire, wire
from llmguard.sim.openai.errors import BadRequest, invalid_type, missing
from llmguard.sim.openai.responses_input import (
    check_tool_calls,
    function_tools,
    input_messages,
    reasoning_echo,
    text_format,
    type_name,
)
from llmguard.sim.pieces import text_pieces
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for, json_text
from llmguard.sim.text import request_digest

MIN_OUTPUT_TOKENS = 16  # the real API's floor for max_output_tokens
ROUTE = "responses"
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
_JSON_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}

History = Callable[[str], list[dict[str, Any]] | None]  # a stored response's conversation, by id


@dataclass(slots=True)
class Plan:
    """A validated request: what to count and what to answer."""

    model: str
    max_output: int | None
    instructions: str | None
    conversation: list[dict[str, Any]]  # previous turns + this input, chat-shaped
    counted_tools: list[Any]
    echo: dict[str, Any]
    call: dict[str, Any] | None = None  # {"name", "arguments"} when the turn calls a tool
    structured: str | None = None  # the JSON text of a json_schema / json_object answer
    store: bool = True


@dataclass(slots=True)
class Answer:
    output: list[dict[str, Any]]
    pieces: list[list[str]]
    output_tokens: int
    reasoning_tokens: int
    truncated: bool
    history: list[dict[str, Any]]  # the output as chat-shaped messages, for previous_response_id


def plan_call(body: dict[str, Any], history: History, seed: int) -> Plan:
    """Validate a create request and decide what it answers; `history` finds previous_response_id."""
    model, max_output, instructions = _check_fields(body)
    conversation, after_tool = _conversation(body, history)
    tools = function_tools(body.get("tools"))
    fmt = text_format(body)
    echo = responses_wire.request_echo(body, tools, reasoning_echo(body, model))
    counted: list[Any] = list(body.get("tools") or [])
    if fmt is not None and fmt.get("type") == "json_schema":
        counted.append(fmt)
    plan = Plan(model, max_output, instructions, conversation, counted, echo, store=body.get("store") is not False)
    _choose(plan, body, tools, fmt, after_tool, seed)
    return plan


def _check_fields(body: dict[str, Any]) -> tuple[str, int | None, str | None]:
    """(model, max_output_tokens, instructions), and the scalar fields checked."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise missing("model")
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        if not isinstance(max_output, int) or isinstance(max_output, bool):
            raise invalid_type("max_output_tokens", "an integer", type_name(max_output))
        if max_output < MIN_OUTPUT_TOKENS:
            raise BadRequest(
                "Invalid 'max_output_tokens': integer below minimum value. "
                f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max_output} instead.",
                "max_output_tokens",
                "integer_below_min_value",
            )
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", type_name(instructions))
    for key in ("store", "stream"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise invalid_type(key, "a boolean", type_name(body[key]))
    if body.get("background") is True or body.get("conversation") is not None:
        key = "background" if body.get("background") is True else "conversation"
        raise BadRequest(
            f"llmguard.sim does not simulate '{key}' responses; leave it out.", key, "unsupported_parameter"
        )
    return model, max_output, instructions


def _conversation(body: dict[str, Any], history: History) -> tuple[list[dict[str, Any]], bool]:
    """(the previous response's conversation + this input, whether the input ends on a tool result)."""
    previous: list[dict[str, Any]] = []
    prev_id = body.get("previous_response_id")
    if prev_id is not None:
        stored = history(prev_id) if isinstance(prev_id, str) else None
        if stored is None:
            raise BadRequest(
                f"Previous response with id '{prev_id}' not found.",
                "previous_response_id",
                "previous_response_not_found",
            )
        previous = stored
    new: list[dict[str, Any]] = []
    after_tool = False
    if "input" not in body or body["input"] is None:
        if not previous:
            raise missing("input")
    else:
        new, after_tool = input_messages(body["input"])
    conversation = previous + new
    check_tool_calls(conversation)
    return conversation, after_tool


def _choose(
    plan: Plan,
    body: dict[str, Any],
    tools: list[dict[str, Any]],
    fmt: dict[str, Any] | None,
    after_tool: bool,
    seed: int,
) -> None:
    """Set `plan.call` or `plan.structured` (neither: a text answer); every schema is checked."""
    digest = request_digest(ROUTE, body, seed)
    arguments: dict[str, str] = {}
    for i, tool in enumerate(tools):  # every schema is checked, as the real API does
        try:
            arguments[tool["name"]] = json_text(instance_for(tool["parameters"] or _EMPTY_PARAMETERS, digest))
        except SchemaError as exc:
            raise BadRequest(
                f"Invalid schema for function '{tool['name']}': {exc}.",
                f"tools[{i}].parameters",
                "invalid_function_parameters",
            ) from None
    try:
        chosen = choose_tool(
            [{"name": t["name"], "parameters": t["parameters"]} for t in tools],
            body.get("tool_choice"),
            digest,
            after_tool_result=after_tool,
        )
    except ToolChoiceError as exc:
        raise BadRequest(f"Invalid 'tool_choice': {exc}.", "tool_choice", "invalid_value") from None
    if chosen is not None:
        plan.call = {"name": chosen["name"], "arguments": arguments[chosen["name"]]}
    elif fmt is not None:
        schema = fmt["schema"] if fmt["type"] == "json_schema" else _JSON_OBJECT
        try:
            plan.structured = json_text(instance_for(schema, digest))
        except SchemaError as exc:
            raise BadRequest(
                f"Invalid schema for response_format '{fmt.get('name', 'json_object')}': {exc}.",
                "text.format.schema",
                "invalid_json_schema",
            ) from None


def answer(plan: Plan, body: dict[str, Any], default_max_tokens: int, seed: int) -> Answer:
    """The output items, their stream pieces and the output tokens, cut at the output cap."""
    cap = plan.max_output or default_max_tokens
    text = make_completion(ROUTE, body, plan.model, cap, seed)
    reasoning = text.reasoning_tokens
    output: list[dict[str, Any]] = []
    pieces: list[list[str]] = []
    history: list[dict[str, Any]] = []
    if is_reasoning_model(plan.model):
        output.append(responses_wire.reasoning_item(responses_wire.reasoning_id()))
        pieces.append([])
    if plan.call is None and plan.structured is None:
        chunks, visible, truncated = text.pieces, text.visible_tokens, text.truncated
    else:
        chunks, visible, truncated = _cut(
            plan.call["arguments"] if plan.call else plan.structured or "", plan.model, max(0, cap - reasoning)
        )
    status = "incomplete" if truncated else "completed"
    joined = "".join(chunks)
    if plan.call is not None:
        cid = wire.tool_call_id()
        item = responses_wire.function_call_item(
            responses_wire.function_item_id(), cid, plan.call["name"], joined, status
        )
        output.append(item)
        pieces.append(chunks)
        call = {"name": plan.call["name"], "arguments": joined}
        history.append({"role": "assistant", "tool_calls": [{"id": cid, "type": "function", "function": call}]})
    elif chunks or not truncated:  # a cap spent on reasoning alone leaves no message at all
        output.append(responses_wire.message_item(responses_wire.message_id(), joined, status))
        pieces.append(chunks)
        history.append({"role": "assistant", "content": joined})
    return Answer(output, pieces, visible + reasoning, reasoning, truncated, history)


def _cut(text: str, model: str, room: int) -> tuple[list[str], int, bool]:
    """(the pieces of `text` that fit in `room` tokens, the tokens they span, whether it was cut)."""
    whole = text_pieces(text, model)
    chunks: list[str] = []
    visible = 0
    for piece, span in zip(whole.pieces, whole.spans, strict=True):
        if visible + span > room:
            break
        chunks.append(piece)
        visible += span
    return chunks, visible, len(chunks) < len(whole.pieces)
