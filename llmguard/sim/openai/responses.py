"""The simulated OpenAI Responses API: `POST /v1/responses` (JSON and typed SSE),
`GET /v1/responses/{id}` and `DELETE /v1/responses/{id}`, and the store of created responses.

The request is checked by `responses_input.py`, planned and answered by `responses_plan.py`, and
rendered by `responses_wire.py`.

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
* **Cached tokens**: the shared OpenAI prefix cache (`prefix_cache.py`), keyed by model, over
  `prompt_token_ids(messages, model, system=instructions)`, from `prefix_cache.MIN_PREFIX` tokens.
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
from dataclasses import dataclass
from typing import Any

from llmguard.sim.billing import BilledUsage
from llmguard.sim.core import Handler, SimCore, json_response, openai_ids, parse_json, sse_response
from llmguard.sim.counting import message_tokens
from llmguard.sim.openai import responses_wire, wire
from llmguard.sim.openai.errors import BAD_JSON, BadRequest, error_response
from llmguard.sim.openai.responses_plan import answer, plan_call
from llmguard.sim.server import Request, Response

STORED_RESPONSES = 10_000
_PREFIX = "/v1/responses/"


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

    def conversation(self, rid: str) -> list[dict[str, Any]] | None:
        stored = self.get(rid)
        return None if stored is None else stored.conversation

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

    def create(self, request: Request) -> Response:
        core = self.core
        body = parse_json(request)
        if body is None:
            raise BadRequest(BAD_JSON)
        plan = plan_call(body, self.store.conversation, core.seed)
        stream = body.get("stream") is True
        kind = core.draw_fault("openai", stream, request)
        model = plan.model
        prompt = message_tokens(plan.conversation, model, system=plan.instructions, tools=plan.counted_tools or None)
        headers = core.admit_call("openai", model, core.charge(prompt, plan.max_output), kind)
        cached = core.prefix_cache.lookup_prompt(model, plan.conversation, prompt, system=plan.instructions)
        result = answer(plan, body, core.default_max_tokens, core.seed)
        out, reasoning = result.output_tokens, result.reasoning_tokens
        use = None if core.drops_usage(kind) else responses_wire.usage(prompt, cached, out, reasoning)
        status = "incomplete" if result.truncated else "completed"
        rid, created = responses_wire.response_id(), core.now()
        final = responses_wire.response_object(
            rid, created, model, plan.echo, status, result.output, use, None if result.truncated else created
        )
        data = responses_wire.response_json(final)
        billed = BilledUsage(input_tokens=prompt, cached_tokens=cached, output_tokens=out, reasoning_tokens=reasoning)
        conversation = plan.conversation + result.history

        def store() -> None:
            if plan.store:
                self.store.put(rid, Stored(data, conversation))

        headers.append(wire.processing_ms(core.delay(out) * 1000))
        if stream:
            preamble, events, tail = responses_wire.response_stream(final, result.pieces)
            response = sse_response(headers, core.stream_parts(preamble, events, tail, reasoning))
        else:
            response = json_response(200, data, headers, delay_s=core.delay(out))
        return core.finish(response, kind, "openai", model, billed, then=store)

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
        body = responses_wire.response_json({"id": rid, "object": "response.deleted", "deleted": True})
        return json_response(200, body, openai_ids())
