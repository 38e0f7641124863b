"""`POST /v1/chat/completions` (and Azure's deployment path for it): validate the body, compute every
choice's answer (text, tool call or structured JSON), then take the shared steps of `SimCore`.

The conventions it follows (prompt tokens, tool-call and structured output tokens, n choices, tool
choice) are written down in `routes.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmguard.sim.billing import BilledUsage
from llmguard.sim.completion import make_completion
from llmguard.sim.core import SimCore, json_response, parse_json, positive_int, sse_response
from llmguard.sim.counting import encoding_for, message_tokens, text_tokens
from llmguard.sim.openai import chat_wire, params, wire
from llmguard.sim.openai.chat_wire import ChatChoice, ToolCall
from llmguard.sim.openai.errors import BAD_JSON, BadRequest, missing
from llmguard.sim.pieces import token_pieces
from llmguard.sim.server import Request, Response
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for, json_text
from llmguard.sim.text import request_digest


def choice_body(body: dict[str, Any], index: int) -> dict[str, Any]:
    """Choice 0 answers the body itself; choice i a body varied by i (so the answers differ)."""
    return body if index == 0 else {**body, "\x00choice": index}


@dataclass(frozen=True, slots=True)
class Answer:
    choice: ChatChoice
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A validated chat request: everything but the steps that change state."""

    model: str
    messages: list[Any]
    prompt_tokens: int
    max_tokens: int  # the bound (the sim's default when the request gives none)
    n: int
    answers: list[Answer]
    stream: bool
    include_usage: bool


@dataclass(frozen=True, slots=True)
class _Shape:
    """What every choice of one request answers within: its bound, tools and response format."""

    model: str
    bound: int
    tools: list[dict[str, Any]]
    tool_choice: Any
    response_format: dict[str, Any] | None
    after_tool: bool  # the last message is a tool result (`auto` then answers in text)


def chat(core: SimCore, request: Request, default_model: str | None) -> Response:
    call = parse_chat(core, request, default_model)
    model, prompt = call.model, call.prompt_tokens
    kind = core.draw_fault("openai", call.stream, request)
    headers = core.admit_call("openai", model, core.charge(prompt, call.n * call.max_tokens), kind)
    cached = core.prefix_cache.lookup_prompt(model, call.messages, prompt)
    out = sum(a.output_tokens for a in call.answers)
    reasoning = sum(a.reasoning_tokens for a in call.answers)
    use = chat_wire.usage(prompt, cached, out, reasoning)
    usage = BilledUsage(input_tokens=prompt, cached_tokens=cached, output_tokens=out, reasoning_tokens=reasoning)
    no_usage = core.drops_usage(kind)
    cid, created = wire.completion_id(), core.now()
    delay = core.delay(max(a.output_tokens for a in call.answers))
    headers.append(wire.processing_ms(delay * 1000))
    choices = [a.choice for a in call.answers]
    if call.stream:
        preamble, events, tail = chat_wire.chat_stream_choices(
            cid, created, model, choices, use, call.include_usage and not no_usage
        )
        lead = max(a.reasoning_tokens for a in call.answers)
        response = sse_response(headers, core.stream_parts(preamble, events, tail, lead))
    else:
        first = choices[0]
        if len(choices) == 1 and first.tool_call is None and first.content is not None:
            data = chat_wire.chat_completion(  # the fast template: the hot path of benchmarks
                cid, created, model, first.content, first.finish, None if no_usage else use
            )
        else:
            data = chat_wire.chat_completion_choices(cid, created, model, choices, None if no_usage else use)
        response = json_response(200, data, headers, delay_s=delay)
    return core.finish(response, kind, "openai", model, usage)


def parse_chat(core: SimCore, request: Request, default_model: str | None) -> ChatCall:
    """Validate a chat body and compute its answers (pure: no fault, limit or cache touched)."""
    body = parse_json(request)
    if body is None:
        raise BadRequest(BAD_JSON)
    model, messages = body.get("model") or default_model, body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    if not isinstance(messages, list) or not messages:
        raise missing("messages")
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(field)
    if max_tokens is not None and not positive_int(max_tokens):
        raise BadRequest(
            f"Invalid '{field}': must be a positive integer, got {max_tokens!r}.", field, "integer_below_min_value"
        )
    if body.get("logprobs") is True or body.get("top_logprobs") is not None:
        param = "logprobs" if body.get("logprobs") is True else "top_logprobs"
        raise BadRequest(params.LOGPROBS, param, "unsupported_parameter")
    n = params.check_integer("n", body.get("n", 1) if body.get("n") is not None else 1, 1, params.MAX_N)
    tools = params.chat_tools(body.get("tools"))
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not tools:
        raise BadRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        )
    response_format = params.response_format(body.get("response_format"), messages)
    counted_tools = list(body["tools"]) if tools else []
    if response_format is not None and response_format is not params.JSON_OBJECT_SCHEMA:
        counted_tools.append(body["response_format"]["json_schema"])
    prompt = message_tokens(messages, model, tools=counted_tools or None)
    bound = max_tokens or core.default_max_tokens
    last = messages[-1]
    after_tool = isinstance(last, dict) and last.get("role") in ("tool", "function")
    shape = _Shape(model, bound, tools, tool_choice, response_format, after_tool)
    answers = [_answer(choice_body(body, index), index, shape, core.seed) for index in range(n)]
    options = body.get("stream_options")
    include = isinstance(options, dict) and options.get("include_usage") is True
    return ChatCall(model, messages, prompt, bound, n, answers, body.get("stream") is True, include)


def _answer(body: dict[str, Any], index: int, shape: _Shape, seed: int) -> Answer:
    """Choice `index`: a tool call, a structured answer or text, as the request's shape decides."""
    model, bound = shape.model, shape.bound
    digest = request_digest("chat", body, seed)
    completion = make_completion("chat", body, model, bound, seed)
    try:
        tool = choose_tool(shape.tools, shape.tool_choice, digest, shape.after_tool)
    except ToolChoiceError as exc:
        raise BadRequest(f"Invalid value for 'tool_choice': {exc}.", "tool_choice") from None
    room = max(0, bound - completion.reasoning_tokens)
    try:
        if tool is not None:
            return _tool_answer(index, tool, digest, model, room, completion.reasoning_tokens)
        if shape.response_format is not None:
            text = json_text(instance_for(shape.response_format, digest))
            return _json_answer(index, text, model, room, completion.reasoning_tokens)
    except SchemaError as exc:  # a schema that passed the first choice failed a later one
        param = "tools" if tool is not None else "response_format"
        raise BadRequest(f"Invalid schema: {exc}", param) from None
    finish = "length" if completion.truncated else "stop"
    choice = ChatChoice(index, finish, completion.text, None, completion.pieces)
    return Answer(choice, completion.output_tokens, completion.reasoning_tokens)


def _tool_answer(index: int, tool: dict[str, Any], digest: bytes, model: str, room: int, reasoning: int) -> Answer:
    """A tool call whose output tokens are name + arguments tokens, cut at `room` like text."""
    name = tool["name"]
    arguments = json_text(instance_for(tool["parameters"], digest))
    name_tokens = text_tokens(name, model)
    tokens = encoding_for(model).encode_ordinary(arguments)
    finish = "tool_calls"
    if name_tokens + len(tokens) > room:
        tokens, finish = tokens[: max(0, room - name_tokens)], "length"
    pieces = token_pieces(tokens, model).pieces
    call = ToolCall(wire.tool_call_id(), name, "".join(pieces))
    out = min(room, name_tokens) + len(tokens)
    return Answer(ChatChoice(index, finish, None, call, pieces), out + reasoning, reasoning)


def _json_answer(index: int, text: str, model: str, room: int, reasoning: int) -> Answer:
    """A structured answer: the JSON text's tokens, cut at `room` (finish "length") like text."""
    tokens = encoding_for(model).encode_ordinary(text)
    finish = "stop"
    if len(tokens) > room:
        tokens, finish = tokens[:room], "length"
    pieces = token_pieces(tokens, model).pieces
    choice = ChatChoice(index, finish, "".join(pieces), None, pieces)
    return Answer(choice, len(tokens) + reasoning, reasoning)
