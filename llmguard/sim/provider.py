"""`SimProvider`: the simulated OpenAI- and Anthropic-compatible provider.

It composes the pieces: the HTTP server (`server.py`), rate limiting (`buckets.py`), fault injection
(`faults.py`), prefix caching (`caching.py`), deterministic answers (`completion.py`) and the wire
shapes (`openai_api.py`, `anthropic_api.py`). Prompt tokens are counted with `llmguard.tokens` and
bills priced with `llmguard.pricing`, the same code the guard uses, so tests compare exactly.

Order of work for an API call: count it → route → parse and validate (400s consume no fault) →
fault → rate limit (faulted calls are not charged) → answer → bill just before the last byte.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from llmguard.providers.base import Usage
from llmguard.sim import anthropic_api, openai_api
from llmguard.sim.buckets import Admission, RateLimiter
from llmguard.sim.caching import MIN_PREFIX, PrefixCache, prompt_token_ids
from llmguard.sim.completion import Completion, make_completion
from llmguard.sim.faults import FaultPlan, Faults
from llmguard.sim.server import HTTPServer, Request, Response
from llmguard.sim.stats import SimStats
from llmguard.tokens import count_messages, count_text

FAULT_RETRY_AFTER_MS = 50  # what a fault 429 asks the client to wait
_UNSET: Any = object()
_FAULT_STATUS = {"429": 429, "500": 500, "503": 503, "529": 529}
_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}


def _json_response(status: int, body: bytes, headers: list[tuple[str, str]]) -> Response:
    return Response(status, [("content-type", "application/json"), *headers], body)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class SimProvider:
    """A real HTTP server on 127.0.0.1 that the official SDKs cannot tell from the real APIs.

    Use as a context manager; `base_url` is the server root: OpenAI clients use `base_url + "/v1"`,
    Anthropic clients use `base_url`.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        window_s: float = 60.0,
        latency_ms: float = 0.0,
        per_token_ms: float = 0.0,
        faults: Faults = None,
        port: int = 0,
        limits: dict[str, dict[str, int | None]] | None = None,
        default_max_tokens: int = 4096,
        seed: int = 0,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._port_wanted = port
        self.seed = seed
        self.default_max_tokens = default_max_tokens
        self.latency_ms = float(latency_ms)
        self.per_token_ms = float(per_token_ms)
        self._limiter = RateLimiter(rpm, tpm, window_s, limits)
        self._faults = FaultPlan(faults, seed)
        self._cache = PrefixCache()
        self._stats = SimStats()
        self._server: HTTPServer | None = None
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/v1/chat/completions"): self._openai_chat,
            ("POST", "/v1/embeddings"): self._openai_embeddings,
            ("POST", "/v1/messages"): self._anthropic_messages,
            ("POST", "/v1/messages/count_tokens"): self._anthropic_count_tokens,
            ("GET", "/_sim/stats"): self._sim_stats,
            ("POST", "/_sim/reset"): self._sim_reset,
            ("POST", "/_sim/configure"): self._sim_configure,
        }

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SimProvider:
        if self._server is None:
            self._server = HTTPServer(
                self._handle,
                self._port_wanted,
                on_timing=self._stats.timing,
                on_error=self._stats.internal_error,
                on_connection=self._stats.connected,
            )
            self._server.start()
        return self

    def stop(self) -> None:
        """Idempotent; returns promptly even with hung or streaming requests in flight."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> SimProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SimProvider is not running: call start() or use it in a with block")
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    # -- control ---------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """A deep-copied snapshot; see `SimStats.snapshot`."""
        return self._stats.snapshot()

    def cost_decimal(self) -> Decimal:
        """The exact total bill (priced models only), for comparisons without float rounding."""
        return self._stats.cost_decimal()

    def reset_stats(self) -> None:
        self._stats.reset()

    def reset_cache(self) -> None:
        """Forget every prompt prefix seen so far."""
        self._cache.clear()

    def configure(
        self,
        rpm: int | None = _UNSET,
        tpm: int | None = _UNSET,
        window_s: float = _UNSET,
        latency_ms: float = _UNSET,
        per_token_ms: float = _UNSET,
        faults: Faults = _UNSET,
        limits: dict[str, dict[str, int | None]] | None = _UNSET,
        default_max_tokens: int = _UNSET,
    ) -> None:
        """Change a running server; only the given arguments change. New limits start full."""
        if latency_ms is not _UNSET:
            self.latency_ms = float(latency_ms)
        if per_token_ms is not _UNSET:
            self.per_token_ms = float(per_token_ms)
        if default_max_tokens is not _UNSET:
            self.default_max_tokens = int(default_max_tokens)
        if faults is not _UNSET:
            self._faults = FaultPlan(faults, self.seed)
        if any(v is not _UNSET for v in (rpm, tpm, window_s, limits)):
            lim = self._limiter
            window = lim.window_s if window_s is _UNSET else float(window_s)
            if window <= 0:
                raise ValueError(f"window_s must be positive, got {window}")
            lim.reconfigure(
                lim.rpm if rpm is _UNSET else rpm,
                lim.tpm if tpm is _UNSET else tpm,
                window,
                lim.limits if limits is _UNSET else limits,
            )

    # -- dispatch --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        sim_route = request.path.startswith("/_sim/")
        if not sim_route:
            self._stats.received()
        route = self._routes.get((request.method, request.path.rstrip("/")))
        if route is None:
            response = self._not_found(request)
        else:
            response = route(request)
        if not sim_route and response.action == "send":
            self._stats.responded(response.status)
        return response

    @staticmethod
    def _is_anthropic(request: Request) -> bool:
        headers = request.headers
        return (
            request.path.startswith("/v1/messages")
            or "anthropic-version" in headers
            or "x-api-key" in headers
        )

    def _not_found(self, request: Request) -> Response:
        if self._is_anthropic(request):
            return _json_response(
                404, anthropic_api.error("Not Found", "not_found_error"), self._anthropic_ids()
            )
        message = f"Invalid URL ({request.method} {request.path})"
        return _json_response(404, openai_api.error(message), self._openai_ids())

    @staticmethod
    def _openai_ids() -> list[tuple[str, str]]:
        return [("x-request-id", openai_api.request_id()), ("openai-version", "2020-10-01")]

    @staticmethod
    def _anthropic_ids() -> list[tuple[str, str]]:
        return [("request-id", anthropic_api.request_id())]

    @staticmethod
    def _parse(request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- shared steps ----------------------------------------------------------------------------

    def _fault(self, provider: str, kind: str | None, stream: bool) -> Response | None:
        """The response for a fault that needs no answer text (cut is applied by the caller)."""
        if kind is None or kind == "cut":
            return None
        self._stats.fault(kind)
        is_openai = provider == "openai"
        ids = self._openai_ids() if is_openai else self._anthropic_ids()
        if kind in _FAULT_STATUS:
            status = _FAULT_STATUS[kind]
            body = openai_api.fault_error(status) if is_openai else anthropic_api.fault_error(status)
            if status == 429:
                ms = FAULT_RETRY_AFTER_MS
                ids += [("retry-after", str(math.ceil(ms / 1000))), ("retry-after-ms", str(ms))]
            return _json_response(status, body, ids)
        if kind == "no_usage" and is_openai and not stream:  # a valid answer that says nothing of usage
            body = json.dumps({
                "id": "chatcmpl-nousage", "object": "chat.completion", "created": int(time.time()),
                "model": "unknown", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "An answer without usage.", "refusal": None}}],
            }).encode()
            return _json_response(200, body, ids)
        if kind == "malformed":
            if not stream:
                return _json_response(200, b'{"id": "chatcmpl-malformed", "object": "chat.comp', ids)
            data = (
                b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": \n\ndata: [DONE]\n\n'
                if is_openai
                else b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
            )
            return Response(200, [("content-type", openai_api.EVENT_STREAM), *ids], parts=[(0.0, data)])
        return Response(action=kind)  # hang, drop

    def _admit(self, model: str, prompt_tokens: int, max_tokens: int | None) -> Admission:
        return self._limiter.admit(model, prompt_tokens + (max_tokens or self.default_max_tokens))

    def _rate_limited(self, adm: Admission, body: bytes, headers: list[tuple[str, str]]) -> Response:
        wait = adm.retry_after_s
        headers += [
            ("retry-after", str(max(1, math.ceil(wait)))),
            ("retry-after-ms", str(max(1, math.ceil(wait * 1000)))),
        ]
        return _json_response(429, body, headers)

    def _stream_parts(
        self, preamble: bytes, events: list[bytes], tail: bytes, lead_tokens: int
    ) -> list[tuple[float, bytes]]:
        """Delays: time to first token = latency (+ hidden reasoning tokens), then per token."""
        per_token = self.per_token_ms / 1000
        first = self.latency_ms / 1000 + per_token * lead_tokens
        parts: list[tuple[float, bytes]] = [(0.0, preamble)]
        if events:
            parts.append((first, events[0]))
            parts += [(per_token, e) for e in events[1:]]
            parts.append((0.0, tail))
        else:
            parts.append((first, tail))
        return parts

    def _finish(self, response: Response, kind: str | None, commit: Callable[[], None]) -> Response:
        """Attach billing, or turn the answer into a cut one (not billed)."""
        if kind == "cut":
            self._stats.fault("cut")
            response.action = "cut"
            if response.parts is not None:  # keep the preamble and about half of the events
                keep = max(2, len(response.parts) // 2)
                response.parts = response.parts[:keep]
        else:
            response.commit = commit
        return response

    def _delay(self, completion: Completion) -> float:
        return (self.latency_ms + self.per_token_ms * completion.output_tokens) / 1000

    # -- OpenAI ----------------------------------------------------------------------------------

    def _openai_bad(self, message: str, param: str | None = None, code: str | None = None) -> Response:
        return _json_response(
            400, openai_api.error(message, "invalid_request_error", param, code), self._openai_ids()
        )

    def _openai_chat(self, request: Request) -> Response:
        body = self._parse(request)
        if body is None:
            return self._openai_bad(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            )
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return self._openai_bad("you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            return self._openai_bad(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = body.get(field)
        if max_tokens is not None and not _positive_int(max_tokens):
            return self._openai_bad(
                f"Invalid '{field}': must be a positive integer, got {max_tokens!r}.",
                field,
                "integer_below_min_value",
            )
        stream = body.get("stream") is True
        kind = self._faults.next()
        faulted = self._fault("openai", kind, stream)
        if faulted is not None:
            return faulted

        prompt = count_messages(messages, model).tokens
        ids = self._openai_ids()
        adm = self._admit(model, prompt, max_tokens) if kind is None else Admission(True)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return self._rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX:
            cached = self._cache.lookup_and_store(model, prompt_token_ids(messages, model), prompt)
        completion = make_completion("chat", body, model, max_tokens or self.default_max_tokens, self.seed)
        out = completion.output_tokens
        use = openai_api.usage(prompt, cached, out, completion.reasoning_tokens)
        finish = "length" if completion.truncated else "stop"
        usage = Usage(
            input_tokens=prompt,
            cached_input_tokens=cached,
            output_tokens=out,
            reasoning_tokens=completion.reasoning_tokens,
        )

        def commit() -> None:
            self._stats.bill("openai", model, usage)

        cid, created = openai_api.completion_id(), int(time.time())
        headers.append(("openai-processing-ms", str(int(self._delay(completion) * 1000) + 1)))
        if stream:
            include = (
                isinstance(body.get("stream_options"), dict)
                and body["stream_options"].get("include_usage") is True
            )
            preamble, events, tail = openai_api.chat_stream(
                cid, created, model, completion.pieces, finish, use, include
            )
            parts = self._stream_parts(preamble, events, tail, completion.reasoning_tokens)
            response = Response(200, [("content-type", openai_api.EVENT_STREAM), *headers], parts=parts)
        else:
            data = openai_api.chat_completion(cid, created, model, completion.text, finish, use)
            response = _json_response(200, data, headers)
            response.delay_s = self._delay(completion)
        return self._finish(response, kind, commit)

    def _openai_embeddings(self, request: Request) -> Response:
        body = self._parse(request)
        if body is None:
            return self._openai_bad("We could not parse the JSON body of your request.")
        model, raw = body.get("model"), body.get("input")
        if not isinstance(model, str) or not model:
            return self._openai_bad("you must provide a model parameter", "model")
        inputs = self._embedding_inputs(raw)
        if inputs is None:
            return self._openai_bad(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "input",
            )
        kind = self._faults.next()
        faulted = self._fault("openai", kind, False)
        if faulted is not None:
            return faulted
        tokens = sum(n if isinstance(item, list) else count_text(item, model).tokens for item, n in inputs)
        ids = self._openai_ids()
        adm = self._limiter.admit(model, tokens) if kind is None else Admission(True)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return self._rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)
        dims = body.get("dimensions")
        if not _positive_int(dims):
            dims = _EMBEDDING_DIMENSIONS.get(model, 1536)
        vectors = [openai_api.embedding_vector(f"{model}\x00{item}", dims) for item, _ in inputs]
        fmt = "base64" if body.get("encoding_format") == "base64" else "float"
        data = openai_api.embeddings(model, vectors, tokens, fmt)
        usage = Usage(input_tokens=tokens)
        headers.append(("openai-processing-ms", str(int(self.latency_ms) + 1)))
        response = _json_response(200, data, headers)
        response.delay_s = self.latency_ms / 1000
        return self._finish(response, kind, lambda: self._stats.bill("openai", model, usage))

    @staticmethod
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

    # -- Anthropic -------------------------------------------------------------------------------

    def _anthropic_bad(self, message: str) -> Response:
        return _json_response(400, anthropic_api.error(message), self._anthropic_ids())

    def _anthropic_validate(self, body: dict[str, Any] | None, need_max_tokens: bool) -> Response | None:
        if body is None:
            return self._anthropic_bad("There was an error parsing the body of your request as JSON.")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self._anthropic_bad("model: Field required")
        if not isinstance(body.get("messages"), list):
            return self._anthropic_bad("messages: Field required")
        if need_max_tokens:
            if "max_tokens" not in body:
                return self._anthropic_bad("max_tokens: Field required")
            if not _positive_int(body["max_tokens"]):
                return self._anthropic_bad(
                    "max_tokens: Input should be a valid integer greater than or equal to 1"
                )
        return None

    def _anthropic_messages(self, request: Request) -> Response:
        body = self._parse(request)
        invalid = self._anthropic_validate(body, need_max_tokens=True)
        if invalid is not None:
            return invalid
        assert body is not None
        model, messages, max_tokens = body["model"], body["messages"], body["max_tokens"]
        system = body.get("system")
        stream = body.get("stream") is True
        kind = self._faults.next()
        faulted = self._fault("anthropic", kind, stream)
        if faulted is not None:
            return faulted

        prompt = count_messages(messages, model, system=system).tokens
        ids = self._anthropic_ids()
        adm = self._admit(model, prompt, max_tokens) if kind is None else Admission(True)
        headers = ids + anthropic_api.ratelimit_headers(adm)
        if not adm.allowed:
            return self._rate_limited(adm, anthropic_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX and b'"cache_control"' in request.body:
            cached = self._cache.lookup_and_store(model, prompt_token_ids(messages, model, system), prompt)
        completion = make_completion("messages", body, model, max_tokens, self.seed)
        out = completion.output_tokens
        use = anthropic_api.usage(prompt - cached, cached, out)
        stop_reason = "max_tokens" if completion.truncated else "end_turn"
        usage = Usage(
            input_tokens=prompt,
            cached_input_tokens=cached,
            output_tokens=out,
            reasoning_tokens=completion.reasoning_tokens,
        )

        def commit() -> None:
            self._stats.bill("anthropic", model, usage)

        mid = anthropic_api.message_id()
        if stream:
            preamble, events, tail = anthropic_api.message_stream(
                mid, model, completion.pieces, stop_reason, use
            )
            parts = self._stream_parts(preamble, events, tail, completion.reasoning_tokens)
            response = Response(200, [("content-type", anthropic_api.EVENT_STREAM), *headers], parts=parts)
        else:
            data = anthropic_api.message(mid, model, completion.text, stop_reason, use)
            response = _json_response(200, data, headers)
            response.delay_s = self._delay(completion)
        return self._finish(response, kind, commit)

    def _anthropic_count_tokens(self, request: Request) -> Response:
        body = self._parse(request)
        invalid = self._anthropic_validate(body, need_max_tokens=False)
        if invalid is not None:
            return invalid
        assert body is not None
        tokens = count_messages(body["messages"], body["model"], system=body.get("system")).tokens
        return _json_response(200, json.dumps({"input_tokens": tokens}).encode(), self._anthropic_ids())

    # -- control routes --------------------------------------------------------------------------

    def _sim_stats(self, request: Request) -> Response:
        return _json_response(200, json.dumps(self.stats).encode(), [])

    def _sim_reset(self, request: Request) -> Response:
        self.reset_stats()
        return _json_response(200, b'{"ok":true}', [])

    def _sim_configure(self, request: Request) -> Response:
        body = self._parse(request)
        allowed = {
            "rpm",
            "tpm",
            "window_s",
            "latency_ms",
            "per_token_ms",
            "faults",
            "limits",
            "default_max_tokens",
        }
        if body is None or not set(body) <= allowed:
            message = f"configure takes a JSON object with some of: {', '.join(sorted(allowed))}"
            return _json_response(400, openai_api.error(message), [])
        try:
            self.configure(**body)
        except (TypeError, ValueError) as exc:
            return _json_response(400, openai_api.error(str(exc)), [])
        return _json_response(200, b'{"ok":true}', [])
