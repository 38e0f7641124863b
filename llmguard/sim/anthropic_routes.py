"""The simulated Anthropic Messages API: messages (JSON and SSE) and count_tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llmguard.sim import anthropic_api
from llmguard.sim.billing import BilledUsage
from llmguard.sim.caching import MIN_PREFIX, prompt_token_ids
from llmguard.sim.completion import make_completion
from llmguard.sim.core import SimCore, anthropic_ids, json_response, parse_json, positive_int
from llmguard.sim.counting import message_tokens
from llmguard.sim.server import Request, Response

Handler = Callable[[Request], Response]


def bad_request(message: str) -> Response:
    return json_response(400, anthropic_api.error(message), anthropic_ids())


def validate(body: dict[str, Any] | None, need_max_tokens: bool) -> Response | None:
    if body is None:
        return bad_request("There was an error parsing the body of your request as JSON.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return bad_request("model: Field required")
    if not isinstance(body.get("messages"), list):
        return bad_request("messages: Field required")
    if need_max_tokens:
        if "max_tokens" not in body:
            return bad_request("max_tokens: Field required")
        if not positive_int(body["max_tokens"]):
            return bad_request("max_tokens: Input should be a valid integer greater than or equal to 1")
    return None


class AnthropicRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
        }

    def match(self, method: str, path: str) -> Handler | None:
        return self._routes.get((method, path))

    def reset_cache(self) -> None:
        pass  # the prompt cache is shared with OpenAI's prefix cache for now

    def messages(self, request: Request) -> Response:
        core = self.core
        body = parse_json(request)
        invalid = validate(body, need_max_tokens=True)
        if invalid is not None:
            return invalid
        assert body is not None
        model, messages, max_tokens = body["model"], body["messages"], body["max_tokens"]
        system = body.get("system")
        stream = body.get("stream") is True
        kind = core.faults.next()
        faulted = core.fault("anthropic", kind, stream, request)
        if faulted is not None:
            return faulted

        prompt = message_tokens(messages, model, system=system)
        ids = anthropic_ids()
        adm = core.admit(model, prompt, max_tokens, kind)
        headers = ids + anthropic_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, anthropic_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX and b'"cache_control"' in request.body:
            cached = core.prefix_cache.lookup_and_store(model, prompt_token_ids(messages, model, system), prompt)
        completion = make_completion("messages", body, model, max_tokens, core.seed)
        out = completion.output_tokens
        use = anthropic_api.usage(prompt - cached, cached, out)
        stop_reason = "max_tokens" if completion.truncated else "end_turn"
        usage = BilledUsage(
            input_tokens=prompt,
            cached_tokens=cached,
            output_tokens=out,
            reasoning_tokens=completion.reasoning_tokens,
        )

        def commit() -> None:
            core.stats.bill("anthropic", model, usage)

        mid = anthropic_api.message_id()
        if stream:
            preamble, events, tail = anthropic_api.message_stream(mid, model, completion.pieces, stop_reason, use)
            parts = core.stream_parts(preamble, events, tail, completion.reasoning_tokens)
            response = Response(200, [("content-type", anthropic_api.EVENT_STREAM), *headers], parts=parts)
        else:
            data = anthropic_api.message(mid, model, completion.text, stop_reason, use)
            response = json_response(200, data, headers)
            response.delay_s = core.completion_delay(completion)
        return core.finish(response, kind, commit)

    def count_tokens(self, request: Request) -> Response:
        body = parse_json(request)
        invalid = validate(body, need_max_tokens=False)
        if invalid is not None:
            return invalid
        assert body is not None
        tokens = message_tokens(body["messages"], body["model"], system=body.get("system"))
        return json_response(200, json.dumps({"input_tokens": tokens}).encode(), anthropic_ids())
