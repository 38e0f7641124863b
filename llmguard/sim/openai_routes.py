"""The simulated OpenAI API: chat completions and embeddings (each route a method of one object).

Handlers parse and validate the body, take the shared steps of `SimCore` in order, and build the
wire shapes with `openai_api`. Usage is counted with `counting` and billed by `SimCore.stats`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmguard.sim import openai_api
from llmguard.sim.billing import BilledUsage
from llmguard.sim.buckets import Admission
from llmguard.sim.caching import MIN_PREFIX, prompt_token_ids
from llmguard.sim.completion import make_completion
from llmguard.sim.core import SimCore, json_response, openai_ids, parse_json, positive_int
from llmguard.sim.counting import message_tokens, text_tokens
from llmguard.sim.server import Request, Response

Handler = Callable[[Request], Response]
_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> Response:
    return json_response(400, openai_api.error(message, "invalid_request_error", param, code), openai_ids())


class OpenAIRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/v1/embeddings"): self.embeddings,
        }

    def match(self, method: str, path: str) -> Handler | None:
        return self._routes.get((method, path))

    def reset_cache(self) -> None:
        self.core.prefix_cache.clear()

    # -- chat completions ------------------------------------------------------------------------

    def chat(self, request: Request) -> Response:
        core = self.core
        body = parse_json(request)
        if body is None:
            return bad_request(_BAD_JSON)
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            return bad_request("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
        field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = body.get(field)
        if max_tokens is not None and not positive_int(max_tokens):
            return bad_request(
                f"Invalid '{field}': must be a positive integer, got {max_tokens!r}.",
                field,
                "integer_below_min_value",
            )
        stream = body.get("stream") is True
        kind = core.faults.next()
        faulted = core.fault("openai", kind, stream, request)
        if faulted is not None:
            return faulted

        prompt = message_tokens(messages, model)
        ids = openai_ids()
        adm = core.admit(model, prompt, max_tokens, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX:
            cached = core.prefix_cache.lookup_and_store(model, prompt_token_ids(messages, model), prompt)
        completion = make_completion("chat", body, model, max_tokens or core.default_max_tokens, core.seed)
        out = completion.output_tokens
        use = openai_api.usage(prompt, cached, out, completion.reasoning_tokens)
        finish = "length" if completion.truncated else "stop"
        usage = BilledUsage(
            input_tokens=prompt,
            cached_tokens=cached,
            output_tokens=out,
            reasoning_tokens=completion.reasoning_tokens,
        )

        def commit() -> None:
            core.stats.bill("openai", model, usage)

        no_usage = kind == "no_usage"
        if no_usage:
            core.stats.fault(kind)
        cid, created = openai_api.completion_id(), core.now()
        headers.append(("openai-processing-ms", str(int(core.completion_delay(completion) * 1000) + 1)))
        if stream:
            options = body.get("stream_options")
            include = isinstance(options, dict) and options.get("include_usage") is True
            preamble, events, tail = openai_api.chat_stream(
                cid, created, model, completion.pieces, finish, use, include and not no_usage
            )
            parts = core.stream_parts(preamble, events, tail, completion.reasoning_tokens)
            response = Response(200, [("content-type", openai_api.EVENT_STREAM), *headers], parts=parts)
        else:
            data = openai_api.chat_completion(
                cid, created, model, completion.text, finish, None if no_usage else use
            )
            response = json_response(200, data, headers)
            response.delay_s = core.completion_delay(completion)
        return core.finish(response, kind, commit)

    # -- embeddings ------------------------------------------------------------------------------

    def embeddings(self, request: Request) -> Response:
        core = self.core
        body = parse_json(request)
        if body is None:
            return bad_request("We could not parse the JSON body of your request.")
        model, raw = body.get("model"), body.get("input")
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", "model")
        inputs = _embedding_inputs(raw)
        if inputs is None:
            return bad_request(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "input",
            )
        kind = core.faults.next()
        faulted = core.fault("openai", kind, False, request)
        if faulted is not None:
            return faulted
        tokens = sum(n if isinstance(item, list) else text_tokens(item, model) for item, n in inputs)
        ids = openai_ids()
        adm: Admission = core.admit_tokens(model, tokens, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)
        dims = body.get("dimensions")
        if not positive_int(dims):
            dims = _EMBEDDING_DIMENSIONS.get(model, 1536)
        vectors = [openai_api.embedding_vector(f"{model}\x00{item}", dims) for item, _ in inputs]
        fmt = "base64" if body.get("encoding_format") == "base64" else "float"
        data = openai_api.embeddings(model, vectors, tokens, fmt)
        usage = BilledUsage(input_tokens=tokens)
        headers.append(("openai-processing-ms", str(int(core.latency_ms) + 1)))
        response = json_response(200, data, headers)
        response.delay_s = core.latency_ms / 1000
        return core.finish(response, kind, lambda: core.stats.bill("openai", model, usage))


def _embedding_inputs(raw: Any) -> list[tuple[Any, int]] | None:
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
