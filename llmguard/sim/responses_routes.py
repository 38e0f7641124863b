"""The simulated OpenAI Responses API: `POST /v1/responses` (JSON and typed SSE),
`GET /v1/responses/{id}` and `DELETE /v1/responses/{id}`.

Conventions (the guard and this oracle each follow the provider, so they are written down here):

* **Prompt tokens**: `input` is normalised to chat messages and counted with
  `counting.message_tokens(messages, model, system=instructions, tools=...)`. A string input is one
  user message; a message item (`{"role", "content"}`, with or without `"type": "message"`) is that
  message (its `id`/`status`/`type` are not counted); a `function_call` item is an assistant message
  whose `tool_calls` hold the call; a `function_call_output` item is a `tool` message; `reasoning`
  items passed back are not counted. The request's `tools` and a `json_schema` text format are
  counted as the tokens of their JSON text (the format as one more tool definition).
* **previous_response_id is counted**: the stored conversation of that response (its input and
  output, not its instructions, as the real API carries it over) comes before the new input, so a
  follow-up turn bills the whole conversation; prefix caching then sees it too. An unknown or
  unstored id is a 400, as on the real API.
* **Cached tokens**: the shared OpenAI prefix cache (`caching.py`), keyed by model, over
  `prompt_token_ids(messages, model, system=instructions)`, from `caching.MIN_PREFIX` tokens.
* **Output**: reasoning models (`completion.is_reasoning_model`) spend hidden reasoning tokens that
  count inside `output_tokens` and inside `max_output_tokens`, and answer with a `reasoning` item
  (empty summary) before the message or call. Text answers are `completion.py`'s passage; tool
  arguments and `json_schema` answers are `structured.instance_for` values, counted with the
  model's tiktoken encoding. Reaching `max_output_tokens` gives status `incomplete`.
* **Tools**: `structured.choose_tool` decides; with `tool_choice` auto a turn whose last input item
  is a `function_call_output` gets a text answer.
* **Storage**: responses with `store` true (the default) are kept in memory, the last
  `STORED_RESPONSES`, once billed (a cut answer is neither billed nor stored); retrieve and delete
  take no fault and no rate-limit charge.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmguard.sim import openai_api, responses_api
from llmguard.sim.billing import BilledUsage
from llmguard.sim.caching import MIN_PREFIX, prompt_token_ids
from llmguard.sim.completion import is_reasoning_model, make_completion
from llmguard.sim.core import SimCore, json_response, openai_ids, parse_json
from llmguard.sim.counting import encoding_for, message_tokens
from llmguard.sim.server import Request, Response
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for, json_text
from llmguard.sim.text import request_digest

Handler = Callable[[Request], Response]
STORED_RESPONSES = 10_000
MIN_OUTPUT_TOKENS = 16  # the real API's floor for max_output_tokens
ROUTE = "responses"
_PREFIX = "/v1/responses/"
_ROLES = ("assistant", "system", "developer", "user")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_ITEM_TYPES = "'message', 'function_call', 'function_call_output' and 'reasoning'"
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
_JSON_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


class BadRequest(Exception):
    """A request the real API answers with a 400; args: message, param, code."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    return json_response(status, openai_api.error(message, "invalid_request_error", param, code), openai_ids())


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


# -- input -------------------------------------------------------------------------------------------


def input_messages(raw: Any) -> tuple[list[dict[str, Any]], bool]:
    """(chat-shaped messages, whether the last item is a tool result) for `input`; see the docstring."""
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}], False
    if not isinstance(raw, list):
        raise BadRequest(
            f"Invalid type for 'input': expected a string or an array of input items, but got {_type_name(raw)} instead.",
            "input",
            "invalid_type",
        )
    messages: list[dict[str, Any]] = []
    last_is_output = False
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(
                f"Invalid type for '{where}': expected an object, but got {_type_name(item)} instead.",
                where,
                "invalid_type",
            )
        kind = item.get("type", "message")
        last_is_output = kind == "function_call_output"
        if kind == "message":
            role, content = item.get("role"), item.get("content")
            if role not in _ROLES:
                raise BadRequest(
                    f"Invalid value: {role!r}. Supported values are: 'assistant', 'system', 'developer', and 'user'.",
                    f"{where}.role",
                    "invalid_value",
                )
            if not isinstance(content, str | list):
                raise BadRequest(
                    f"Missing required parameter: '{where}.content'.",
                    f"{where}.content",
                    "missing_required_parameter",
                )
            messages.append({"role": role, "content": content})
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise BadRequest(
                        f"Missing required parameter: '{where}.{key}'.",
                        f"{where}.{key}",
                        "missing_required_parameter",
                    )
            call = {"name": item["name"], "arguments": item["arguments"]}
            tool_call = {"id": item["call_id"], "type": "function", "function": call}
            messages.append({"role": "assistant", "tool_calls": [tool_call]})
        elif kind == "function_call_output":
            for key in ("call_id", "output"):
                if key not in item or not isinstance(item[key], str | list):
                    raise BadRequest(
                        f"Missing required parameter: '{where}.{key}'.",
                        f"{where}.{key}",
                        "missing_required_parameter",
                    )
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        elif kind != "reasoning":
            raise BadRequest(
                f"Invalid value: {kind!r}. llmguard.sim supports input items of type {_ITEM_TYPES}.",
                f"{where}.type",
                "invalid_value",
            )
    return messages, last_is_output


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


# -- tools and formats -------------------------------------------------------------------------------


def function_tools(raw: Any) -> list[dict[str, Any]]:
    """The request's tools as the response echoes them (function tools only)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(
            f"Invalid type for 'tools': expected an array, but got {_type_name(raw)} instead.",
            "tools",
            "invalid_type",
        )
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise BadRequest(
                f"Invalid value: {kind!r}. llmguard.sim supports only tools of type 'function'.",
                f"tools[{i}].type",
                "invalid_value",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise BadRequest(
                f"Missing required parameter: 'tools[{i}].name'.",
                f"tools[{i}].name",
                "missing_required_parameter",
            )
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
        raise BadRequest(
            f"Invalid type for 'text': expected an object, but got {_type_name(text)} instead.",
            "text",
            "invalid_type",
        )
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return fmt
    if kind != "json_schema":
        raise BadRequest(
            f"Invalid value: {kind!r}. Supported values are: 'text', 'json_schema', and 'json_object'.",
            "text.format.type",
            "invalid_value",
        )
    for key, want in (("name", str), ("schema", dict)):
        if not isinstance(fmt.get(key), want):
            raise BadRequest(
                f"Missing required parameter: 'text.format.{key}'.",
                f"text.format.{key}",
                "missing_required_parameter",
            )
    return fmt


def reasoning_echo(body: dict[str, Any], model: str) -> dict[str, Any]:
    raw = body.get("reasoning")
    if raw is not None and not isinstance(raw, dict):
        raise BadRequest(
            f"Invalid type for 'reasoning': expected an object, but got {_type_name(raw)} instead.",
            "reasoning",
            "invalid_type",
        )
    raw = raw or {}
    effort = raw.get("effort")
    if effort is not None and effort not in _EFFORTS:
        supported = ", ".join(f"'{e}'" for e in _EFFORTS)
        raise BadRequest(
            f"Invalid value: {effort!r}. Supported values are: {supported}.",
            "reasoning.effort",
            "invalid_value",
        )
    if not is_reasoning_model(model):
        if effort is not None:
            raise BadRequest(
                "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                "reasoning.effort",
                "unsupported_parameter",
            )
        return {"effort": None, "summary": None}
    return {"effort": effort or "medium", "summary": raw.get("summary")}


def token_pieces(text: str, model: str) -> tuple[list[str], list[int]]:
    """`text` as stream pieces, and the tokens each piece spans (a piece never splits a character)."""
    pieces: list[str] = []
    spans: list[int] = []
    pending, count = b"", 0
    encoding = encoding_for(model)
    for token in encoding.decode_tokens_bytes(encoding.encode_ordinary(text)):
        pending += token
        count += 1
        try:
            piece = pending.decode("utf-8")
        except UnicodeDecodeError:
            continue
        pieces.append(piece)
        spans.append(count)
        pending, count = b"", 0
    return pieces, spans


# -- a planned call ----------------------------------------------------------------------------------


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


@dataclass(slots=True)
class Stored:
    body: bytes
    conversation: list[dict[str, Any]]


class ResponseStore:
    """The last `limit` stored responses (oldest forgotten first), thread-safe."""

    def __init__(self, limit: int = STORED_RESPONSES) -> None:
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, rid: str, item: Stored) -> None:
        with self._lock:
            self._items[rid] = item
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, rid: str) -> Stored | None:
        with self._lock:
            return self._items.get(rid)

    def delete(self, rid: str) -> bool:
        with self._lock:
            return self._items.pop(rid, None) is not None


class ResponsesRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.store = ResponseStore()

    def match(self, method: str, path: str) -> Handler | None:
        if path == "/v1/responses":
            return self.create if method == "POST" else None
        if path.startswith(_PREFIX) and "/" not in path[len(_PREFIX) :]:
            return {"GET": self.retrieve, "DELETE": self.delete}.get(method)
        return None

    def reset_cache(self) -> None:
        pass  # the prefix cache is shared with chat completions, which clears it

    # -- POST /v1/responses ------------------------------------------------------------------------

    def plan(self, body: dict[str, Any]) -> Plan:
        """Validate a create request (400s consume no fault) and decide what it answers."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        max_output = body.get("max_output_tokens")
        if max_output is not None:
            if not isinstance(max_output, int) or isinstance(max_output, bool):
                raise BadRequest(
                    f"Invalid type for 'max_output_tokens': expected an integer, but got {_type_name(max_output)} instead.",
                    "max_output_tokens",
                    "invalid_type",
                )
            if max_output < MIN_OUTPUT_TOKENS:
                raise BadRequest(
                    "Invalid 'max_output_tokens': integer below minimum value. "
                    f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max_output} instead.",
                    "max_output_tokens",
                    "integer_below_min_value",
                )
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise BadRequest(
                f"Invalid type for 'instructions': expected a string, but got {_type_name(instructions)} instead.",
                "instructions",
                "invalid_type",
            )
        for key in ("store", "stream"):
            if body.get(key) is not None and not isinstance(body[key], bool):
                raise BadRequest(
                    f"Invalid type for '{key}': expected a boolean, but got {_type_name(body[key])} instead.",
                    key,
                    "invalid_type",
                )
        if body.get("background") is True or body.get("conversation") is not None:
            key = "background" if body.get("background") is True else "conversation"
            raise BadRequest(
                f"llmguard.sim does not simulate '{key}' responses; leave it out.",
                key,
                "unsupported_parameter",
            )
        previous: list[dict[str, Any]] = []
        prev_id = body.get("previous_response_id")
        if prev_id is not None:
            stored = self.store.get(prev_id) if isinstance(prev_id, str) else None
            if stored is None:
                raise BadRequest(
                    f"Previous response with id '{prev_id}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            previous = stored.conversation
        if "input" not in body or body["input"] is None:
            if not previous:
                raise BadRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter")
            new, after_tool = [], False
        else:
            new, after_tool = input_messages(body["input"])
        conversation = previous + new
        check_tool_calls(conversation)
        tools = function_tools(body.get("tools"))
        fmt = text_format(body)
        echo = responses_api.request_echo(body, tools, reasoning_echo(body, model))
        counted: list[Any] = list(body.get("tools") or [])
        if fmt is not None and fmt.get("type") == "json_schema":
            counted.append(fmt)
        plan = Plan(model, max_output, instructions, conversation, counted, echo, store=body.get("store") is not False)

        digest = request_digest(ROUTE, body, self.core.seed)
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
        return plan

    def answer(self, plan: Plan, body: dict[str, Any]) -> Answer:
        """The output items, their stream pieces and the output tokens, cut at the output cap."""
        cap = plan.max_output or self.core.default_max_tokens
        text = make_completion(ROUTE, body, plan.model, cap, self.core.seed)
        reasoning = text.reasoning_tokens
        room = max(0, cap - reasoning)
        output: list[dict[str, Any]] = []
        pieces: list[list[str]] = []
        history: list[dict[str, Any]] = []
        if is_reasoning_model(plan.model):
            output.append(responses_api.reasoning_item(responses_api.reasoning_id()))
            pieces.append([])
        if plan.call is None and plan.structured is None:
            chunks, visible, truncated = text.pieces, text.visible_tokens, text.truncated
        else:
            whole, spans = token_pieces(plan.call["arguments"] if plan.call else plan.structured or "", plan.model)
            chunks, visible = [], 0
            for piece, span in zip(whole, spans, strict=True):
                if visible + span > room:
                    break
                chunks.append(piece)
                visible += span
            truncated = len(chunks) < len(whole)
        status = "incomplete" if truncated else "completed"
        joined = "".join(chunks)
        if plan.call is not None:
            cid = responses_api.call_id()
            item = responses_api.function_call_item(
                responses_api.function_item_id(), cid, plan.call["name"], joined, status
            )
            output.append(item)
            pieces.append(chunks)
            call = {"name": plan.call["name"], "arguments": joined}
            history.append({"role": "assistant", "tool_calls": [{"id": cid, "type": "function", "function": call}]})
        elif chunks or not truncated:  # a cap spent on reasoning alone leaves no message at all
            output.append(responses_api.message_item(responses_api.message_id(), joined, status))
            pieces.append(chunks)
            history.append({"role": "assistant", "content": joined})
        return Answer(output, pieces, visible + reasoning, reasoning, truncated, history)

    def create(self, request: Request) -> Response:
        core = self.core
        body = parse_json(request)
        if body is None:
            return error_response(400, _BAD_JSON)
        try:
            plan = self.plan(body)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.param, exc.code)
        stream = body.get("stream") is True
        kind = core.faults.next()
        faulted = core.fault("openai", kind, stream, request)
        if faulted is not None:
            return faulted

        model = plan.model
        prompt = message_tokens(plan.conversation, model, system=plan.instructions, tools=plan.counted_tools or None)
        ids = openai_ids()
        adm = core.admit(model, prompt, plan.max_output, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX:
            token_ids = prompt_token_ids(plan.conversation, model, system=plan.instructions)
            cached = core.prefix_cache.lookup_and_store(model, token_ids, prompt)
        answer = self.answer(plan, body)
        out, reasoning = answer.output_tokens, answer.reasoning_tokens
        no_usage = kind == "no_usage"
        if no_usage:
            core.stats.fault(kind)
        use = None if no_usage else responses_api.usage(prompt, cached, out, reasoning)
        status = "incomplete" if answer.truncated else "completed"
        rid, created = responses_api.response_id(), core.now()
        final = responses_api.response_object(
            rid, created, model, plan.echo, status, answer.output, use, None if answer.truncated else created
        )
        data = responses_api.response_json(final)
        billed = BilledUsage(input_tokens=prompt, cached_tokens=cached, output_tokens=out, reasoning_tokens=reasoning)
        conversation = plan.conversation + answer.history

        def commit() -> None:
            core.stats.bill("openai", model, billed)
            if plan.store:
                self.store.put(rid, Stored(data, conversation))

        headers.append(("openai-processing-ms", str(int(core.delay(out) * 1000) + 1)))
        if stream:
            preamble, events, tail = responses_api.response_stream(final, answer.pieces)
            parts = core.stream_parts(preamble, events, tail, reasoning)
            response = Response(200, [("content-type", openai_api.EVENT_STREAM), *headers], parts=parts)
        else:
            response = json_response(200, data, headers)
            response.delay_s = core.delay(out)
        return core.finish(response, kind, commit)

    # -- GET / DELETE /v1/responses/{id} ------------------------------------------------------------

    def retrieve(self, request: Request) -> Response:
        rid = request.path.rstrip("/")[len(_PREFIX) :]
        if "stream=true" in request.query:
            return error_response(
                400,
                "llmguard.sim can stream only while creating a response (background mode is not simulated).",
                "stream",
                "unsupported_parameter",
            )
        stored = self.store.get(rid)
        if stored is None:
            return error_response(404, f"Response with id '{rid}' not found.")
        return json_response(200, stored.body, openai_ids())

    def delete(self, request: Request) -> Response:
        rid = request.path.rstrip("/")[len(_PREFIX) :]
        if not self.store.delete(rid):
            return error_response(404, f"Response with id '{rid}' not found.")
        body = responses_api.response_json({"id": rid, "object": "response.deleted", "deleted": True})
        return json_response(200, body, openai_ids())
