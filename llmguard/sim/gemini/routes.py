"""The simulated Gemini Developer API: `POST /{v1|v1beta|v1alpha}/models/{model}:generateContent`,
`:streamGenerateContent` (SSE with `?alt=sse`, else a JSON array of chunks), `:countTokens`,
`:embedContent` and `:batchEmbedContents`; any other path under `/v1beta` is Google's 404.

Same order of work as the other APIs (`core.py`): check the body (400 INVALID_ARGUMENT) → fault →
rate limit → answer → bill just before the last byte, as provider "google" (genai-prices' id).
Faults and 429s speak Google's error shape: a rate limit or a `429` fault is RESOURCE_EXHAUSTED
with a QuotaFailure and a `google.rpc.RetryInfo` whose `retryDelay` is the wait (the fault's is
`fault_retry_after_s`, default 0.05 s); Gemini sends no `retry-after` or rate-limit headers.
`quota` is a spent daily quota, `echo_key` a 400 that quotes the key (`x-goog-api-key` or `?key=`).
"""

from __future__ import annotations

import re
import urllib.parse

from llmguard.sim.billing import BilledUsage
from llmguard.sim.core import (
    FAULT_RETRY_AFTER_MS,
    FAULT_STATUS,
    Handler,
    Reply,
    SimCore,
    json_response,
    parse_json,
    sse_response,
)
from llmguard.sim.gemini import wire
from llmguard.sim.gemini.request import (
    BadRequest,
    check_contents,
    embedding_texts,
    plan_answer,
    prompt_ids,
    prompt_tokens,
)
from llmguard.sim.openai.prefix_cache import PrefixCache
from llmguard.sim.openai.wire import embedding_vector
from llmguard.sim.server import Request, Response
from llmguard.sim.wire import dumps

PROVIDER = "google"
_PATH = re.compile(r"/(v1|v1beta|v1alpha)/models/([^/:]+):([A-Za-z]+)")
_DIMENSIONS = {"gemini-embedding-001": 3072}
_HEADERS = [("server", "scaffolding on HTTPServer2"), ("x-content-type-options", "nosniff")]


def _key(request: Request) -> str:
    query = urllib.parse.parse_qs(request.query)
    return request.headers.get("x-goog-api-key") or (query.get("key") or [""])[0]


class GeminiRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.cache = PrefixCache()
        self._methods: dict[str, Handler] = {
            "generateContent": self.generate,
            "streamGenerateContent": self.generate,
            "countTokens": self.count_tokens,
            "embedContent": self.embed,
            "batchEmbedContents": self.embed,
        }

    def match(self, method: str, path: str) -> Handler | None:
        found = _PATH.fullmatch(path)
        if found is not None and method == "POST" and found.group(3) in self._methods:
            return self._guarded(self._methods[found.group(3)])
        if found is not None or path.startswith(("/v1beta/", "/v1alpha/")):
            return self.not_found
        return None

    def reset_cache(self) -> None:
        self.cache.clear()

    @staticmethod
    def _guarded(handler: Handler) -> Handler:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except BadRequest as exc:
                return json_response(400, wire.error(400, str(exc), "INVALID_ARGUMENT"), list(_HEADERS))

        return run

    @staticmethod
    def not_found(request: Request) -> Response:
        message = f"Method {request.method} {request.path} is not found for this API version, or is not supported."
        return json_response(404, wire.error(404, message, "NOT_FOUND"), list(_HEADERS))

    # -- steps -----------------------------------------------------------------------------------

    def _fault(self, model: str, stream: bool, request: Request) -> str | None:
        """The fault this call gets; raises `Reply` when the fault is the whole answer."""
        core = self.core
        kind = core.faults.next()
        if kind is None or kind in ("cut", "no_usage"):
            return kind
        core.stats.fault(kind)
        headers = list(_HEADERS)
        if kind == "429":
            asked = core.fault_retry_after_s
            wait = FAULT_RETRY_AFTER_MS / 1000 if asked is None else asked
            body = wire.quota_exhausted(model, "GenerateRequestsPerMinutePerProjectPerModel", 10, wait)
            raise Reply(json_response(429, body, headers))
        if kind in FAULT_STATUS:
            status = FAULT_STATUS[kind]
            raise Reply(json_response(status, wire.fault_error(status), headers))
        if kind == "quota":
            body = wire.quota_exhausted(model, "GenerateRequestsPerDayPerProjectPerModel-FreeTier", 250, None)
            raise Reply(json_response(429, body, headers))
        if kind == "echo_key":
            message = f"API key not valid: {_key(request)}. Please pass a valid API key."
            raise Reply(json_response(400, wire.error(400, message, "INVALID_ARGUMENT"), headers))
        if kind == "malformed":
            if stream:
                raise Reply(sse_response(headers, [(0.0, b'data: {"candidates": [{"content": {\r\n\r\n')]))
            raise Reply(json_response(200, b'{"candidates": [{"content": {"parts": [{"te', headers))
        raise Reply(Response(action=kind))  # hang, drop

    def _admit(self, model: str, tokens: int, kind: str | None) -> None:
        """Charge the model's buckets (a faulted call passes uncharged), or `Reply` with the 429."""
        if kind is not None:
            return
        adm = self.core.limiter.admit(model, tokens)
        if not adm.allowed:
            _, limit = adm.refusal()
            body = wire.quota_exhausted(model, "GenerateRequestsPerMinutePerProjectPerModel", limit, adm.retry_after_s)
            raise Reply(json_response(429, body, list(_HEADERS)))

    # -- handlers --------------------------------------------------------------------------------

    def generate(self, request: Request) -> Response:
        core = self.core
        found = _PATH.fullmatch(request.path)
        assert found is not None
        model, stream = found.group(2), found.group(3) == "streamGenerateContent"
        sse = stream and "alt=sse" in request.query
        body = check_contents(parse_json(request))
        ids = prompt_ids(body, model)
        prompt = prompt_tokens(ids)
        plan = plan_answer(body, model, core.default_max_tokens, core.seed)
        kind = self._fault(model, stream, request)
        config = body.get("generationConfig") or body.get("generation_config") or {}
        max_out = config.get("maxOutputTokens") or config.get("max_output_tokens")
        self._admit(model, core.charge(prompt, max_out if isinstance(max_out, int) else None), kind)
        cached = self.cache.lookup_and_store(model, ids, prompt)
        out, thoughts = len(plan.pieces), plan.thoughts
        billed = BilledUsage(
            input_tokens=prompt, cached_tokens=cached, output_tokens=out + thoughts, reasoning_tokens=thoughts
        )
        silent = core.drops_usage(kind)
        final_use = None if silent else wire.usage(prompt, out, thoughts, cached)
        rid = wire.response_id()
        headers = list(_HEADERS)
        if not stream:
            data = wire.chunk("".join(plan.pieces), plan.finish, final_use, model, rid)
            response = json_response(200, dumps(data).encode(), headers, delay_s=core.delay(out + thoughts))
            return core.finish(response, kind, PROVIDER, model, billed)
        so_far = None if silent else wire.usage(prompt, None, thoughts, cached)
        chunks = [wire.chunk(piece, None, so_far, model, rid) for piece in plan.pieces[:-1]]
        last = plan.pieces[-1] if plan.pieces else None
        chunks.append(wire.chunk(last, plan.finish, final_use, model, rid))
        if not sse:  # without alt=sse the API streams one JSON array of the chunks
            text = "[" + ",\r\n".join(dumps(c) for c in chunks) + "]"
            response = json_response(200, text.encode(), headers, delay_s=core.delay(out + thoughts))
            return core.finish(response, kind, PROVIDER, model, billed)
        events = [wire.event(c) for c in chunks]
        parts = core.stream_parts(b"", events[:-1], events[-1], thoughts)
        return core.finish(sse_response(headers, parts), kind, PROVIDER, model, billed)

    def count_tokens(self, request: Request) -> Response:
        found = _PATH.fullmatch(request.path)
        assert found is not None
        body = parse_json(request)
        if body is not None and isinstance(body.get("generateContentRequest"), dict):
            body = body["generateContentRequest"]
        body = check_contents(body)
        total = prompt_tokens(prompt_ids(body, found.group(2)))
        return json_response(200, wire.count_tokens(total), list(_HEADERS))

    def embed(self, request: Request) -> Response:
        core = self.core
        found = _PATH.fullmatch(request.path)
        assert found is not None
        model, batch = found.group(2), found.group(3) == "batchEmbedContents"
        texts = embedding_texts(parse_json(request), batch)
        kind = self._fault(model, False, request)
        tokens = sum(prompt_tokens(prompt_ids({"contents": [{"parts": [{"text": t}]}]}, model)) for t in texts)
        self._admit(model, tokens, kind)
        dims = _DIMENSIONS.get(model, 768)
        vectors = [embedding_vector(f"{model}\x00{text}", dims) for text in texts]
        data = wire.embeddings(vectors, None if core.drops_usage(kind) else tokens, batch)
        response = json_response(200, data, list(_HEADERS), delay_s=core.latency_ms / 1000)
        return core.finish(response, kind, PROVIDER, model, BilledUsage(input_tokens=tokens))
