"""The simulated Anthropic Messages API: messages (JSON and SSE), count_tokens, and a clear 404 for
the Message Batches API, which the simulator does not offer. The request is checked by
`request.py`, answered by `answer.py` and rendered by `wire.py`.

A messages call may carry prompt caching (`cache.py`: breakpoints, TTLs, the per-model
minimum), extended thinking and tools. The answer is a list of content blocks:

* **thinking** (`thinking: {"type": "enabled", "budget_tokens": N}`, 1024 ≤ N < max_tokens): a
  thinking block comes first. The model "wants" to think 256–4096 tokens (from the request digest)
  and stops at the budget; the text is `llmguard.sim.text` pieces (one token each) and the
  signature a deterministic opaque string. `{"type": "adaptive"}` thinks the same way within half
  of max_tokens. Thinking tokens are output tokens (`usage.output_tokens`, with
  `output_tokens_details.thinking_tokens`) and share the max_tokens bound with the answer.
* **tool_use** (`tools` + `tool_choice`, the choice by `structured.choose_tool`): one call whose
  `input` validates against the tool's `input_schema` (`structured.instance_for`), stop_reason
  `tool_use`; a turn whose last message carries a `tool_result` gets a text answer under `auto`.
  Output tokens of a call = tiktoken tokens of its input JSON text (`json.dumps`, the spaced form
  Anthropic streams) + tokens of its name. A call cut by max_tokens keeps its streamed prefix; the
  plain JSON answer then has `input: {}` (the simulator does not parse partial JSON).
* **text** otherwise (`completion.make_completion`, cut at what thinking left of max_tokens).

The `no_usage` fault answers normally but says nothing of usage: `"usage": null` in a JSON answer
(the SDK then gives `message.usage is None`), empty usage objects in a stream (see
`wire.message_stream`). The call is still billed: the provider did the work.
"""

from __future__ import annotations

import json

from llmguard.sim.anthropic import wire
from llmguard.sim.anthropic.answer import make_answer
from llmguard.sim.anthropic.cache import AnthropicPromptCache
from llmguard.sim.anthropic.request import check_basics, layout_of, thinking_budget, tool_call, tool_specs
from llmguard.sim.billing import BilledUsage
from llmguard.sim.core import Handler, SimCore, anthropic_ids, json_response, parse_json, sse_response
from llmguard.sim.server import Request, Response


class AnthropicRoutes:
    """`cache` is the prompt cache (its `clock` can be replaced to step time in tests)."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.cache = AnthropicPromptCache()
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
        }

    def match(self, method: str, path: str) -> Handler | None:
        if path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):
            return self.batches
        return self._routes.get((method, path))

    def reset_cache(self) -> None:
        self.cache.clear()

    def messages(self, request: Request) -> Response:
        core = self.core
        body = check_basics(parse_json(request), need_max_tokens=True)
        model, max_tokens = body["model"], body["max_tokens"]
        specs = tool_specs(body)
        budget = thinking_budget(body, max_tokens)
        layout = layout_of(body, request.body)
        call = tool_call(body, specs, core.seed)
        stream = body.get("stream") is True
        kind = core.draw_fault("anthropic", stream, request)
        prompt = layout.total
        headers = core.admit_call("anthropic", model, core.charge(prompt, max_tokens), kind)
        cache = self.cache.lookup_and_store(model, layout)
        answer = make_answer(body, model, max_tokens, budget, call, core.seed)
        out = answer.output_tokens
        thinking = answer.thinking_tokens if budget else None
        use = wire.usage(cache.input_tokens, out, cache.read, cache.write_5m, cache.write_1h, thinking)
        usage = BilledUsage(
            input_tokens=prompt,
            cached_tokens=cache.read,
            cache_write_tokens=cache.written,
            cache_write_1h_tokens=cache.write_1h,
            output_tokens=out,
            reasoning_tokens=answer.thinking_tokens + answer.hidden_tokens,
        )
        sent = None if core.drops_usage(kind) else use
        mid = wire.message_id()
        if stream:
            preamble, events, tail = wire.message_stream(mid, model, answer.blocks, answer.stop_reason, sent)
            response = sse_response(headers, core.stream_parts(preamble, events, tail, answer.hidden_tokens))
        else:
            data = wire.message(mid, model, answer.blocks, answer.stop_reason, sent)
            response = json_response(200, data, headers, delay_s=core.delay(out))
        return core.finish(response, kind, "anthropic", model, usage)

    def count_tokens(self, request: Request) -> Response:
        body = check_basics(parse_json(request), need_max_tokens=False)
        tool_specs(body)
        layout = layout_of(body, request.body)
        return json_response(200, json.dumps({"input_tokens": layout.total}).encode(), anthropic_ids())

    @staticmethod
    def batches(request: Request) -> Response:
        message = (
            f"{wire.BATCHES_MISSING} ({request.method} {request.path}); send each request to POST /v1/messages instead."
        )
        return json_response(404, wire.error(message, "not_found_error"), anthropic_ids())
