"""What every simulated route shares: settings, the rate limiter, faults, caches, the books, and the
steps each API call takes in the same order.

Order of work for an API call: parse and validate (400s consume no fault) → fault → rate limit
(faulted calls are not charged) → answer → bill just before the last byte. A step that answers the
call early (a 400, a fault, a 429) raises `Reply`; `SimProvider` sends the response it carries.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeGuard

from llmguard.sim.anthropic import wire as anthropic_wire
from llmguard.sim.billing import BilledUsage
from llmguard.sim.buckets import Admission, RateLimiter
from llmguard.sim.faults import FaultPlan
from llmguard.sim.openai import wire as openai_wire
from llmguard.sim.openai.prefix_cache import PrefixCache
from llmguard.sim.server import Request, Response
from llmguard.sim.stats import SimStats
from llmguard.sim.wire import EVENT_STREAM

FAULT_RETRY_AFTER_MS = 50  # what a fault 429 asks the client to wait
FAULT_STATUS = {"429": 429, "500": 500, "503": 503, "529": 529}

Handler = Callable[[Request], Response]
Headers = list[tuple[str, str]]


class Routes(Protocol):
    """One simulated API: the handler for a method and path, and the prompt cache it keeps."""

    def match(self, method: str, path: str) -> Handler | None: ...

    def reset_cache(self) -> None: ...


class Reply(Exception):
    """Raised by a step that answers the call early (a 400, a fault, a 429): send `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, body: bytes, headers: Headers, delay_s: float = 0.0) -> Response:
    """A JSON answer, sent after `delay_s` (the simulated latency)."""
    return Response(status, [("content-type", "application/json"), *headers], body, delay_s=delay_s)


def sse_response(headers: Headers, parts: list[tuple[float, bytes]]) -> Response:
    """A 200 event stream of (delay, bytes) parts."""
    return Response(200, [("content-type", EVENT_STREAM), *headers], parts=parts)


def positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def parse_json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):  # hostile nesting is a bad request, not a server error
        return None
    return body if isinstance(body, dict) else None


def openai_ids() -> list[tuple[str, str]]:
    return [("x-request-id", openai_wire.request_id()), ("openai-version", "2020-10-01")]


def anthropic_ids() -> list[tuple[str, str]]:
    return [("request-id", anthropic_wire.request_id())]


def request_key(request: Request) -> str | None:
    """The API key a request carries (Bearer, x-api-key or Azure's api-key), for the echo_key fault."""
    headers = request.headers
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-api-key") or headers.get("api-key")


class SimCore:
    """Shared state and steps. Route handlers hold one; `SimProvider` owns it."""

    def __init__(
        self,
        limiter: RateLimiter,
        faults: FaultPlan,
        latency_ms: float,
        per_token_ms: float,
        default_max_tokens: int,
        seed: int,
    ) -> None:
        self.limiter = limiter
        self.faults = faults
        self.latency_ms = float(latency_ms)
        self.per_token_ms = float(per_token_ms)
        self.default_max_tokens = default_max_tokens
        self.seed = seed
        # A fault 429's Retry-After: None sends the default pair (`retry-after-ms: 50`, `retry-after: 1`);
        # a number of seconds sends only `retry-after: <seconds>`, the plain header every SDK reads.
        self.fault_retry_after_s: float | None = None
        self.prefix_cache = PrefixCache()
        self.stats = SimStats()

    # -- faults ----------------------------------------------------------------------------------

    def fault(self, provider: str, kind: str | None, stream: bool, request: Request) -> Response | None:
        """The response for a fault that needs no answer text (cut and no_usage are applied later)."""
        if kind is None or kind in ("cut", "no_usage"):
            return None
        self.stats.fault(kind)
        is_openai = provider == "openai"
        ids = openai_ids() if is_openai else anthropic_ids()
        if kind in FAULT_STATUS:
            status = FAULT_STATUS[kind]
            body = openai_wire.fault_error(status) if is_openai else anthropic_wire.fault_error(status)
            if status == 429 and self.fault_retry_after_s is not None:
                ids.append(("retry-after", f"{self.fault_retry_after_s:g}"))
            elif status == 429:
                ms = FAULT_RETRY_AFTER_MS
                ids += [("retry-after", str(math.ceil(ms / 1000))), ("retry-after-ms", str(ms))]
            return json_response(status, body, ids)
        if kind == "quota":  # OpenAI's answer to an account out of credit: a 429 no wait cures
            message = "You exceeded your current quota, please check your plan and billing details."
            if is_openai:
                body = openai_wire.error(message, "insufficient_quota", None, "insufficient_quota")
            else:
                body = anthropic_wire.error("Your credit balance is too low to access the Anthropic API.")
            return json_response(429 if is_openai else 400, body, ids)
        if kind == "echo_key":  # some gateways quote the credential they rejected, in full
            key = request_key(request) or ""
            message = f"Incorrect API key provided: {key}. You can find your API key in your account settings."
            if is_openai:
                body = openai_wire.error(message, "invalid_request_error", None, "invalid_api_key")
            else:
                body = anthropic_wire.error(message, "authentication_error")
            return json_response(401, body, ids)
        if kind == "malformed":
            if not stream:
                return json_response(200, b'{"id": "chatcmpl-malformed", "object": "chat.comp', ids)
            data = (
                b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": \n\ndata: [DONE]\n\n'
                if is_openai
                else b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
            )
            return sse_response(ids, [(0.0, data)])
        return Response(action=kind)  # hang, drop

    def draw_fault(self, provider: str, stream: bool, request: Request) -> str | None:
        """The fault this call gets (None: none); raises `Reply` when the fault is the whole answer."""
        kind = self.faults.next()
        faulted = self.fault(provider, kind, stream, request)
        if faulted is not None:
            raise Reply(faulted)
        return kind

    # -- rate limits -----------------------------------------------------------------------------

    def charge(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """The tokens admission charges up front: the prompt and the answer's bound (else the default)."""
        return prompt_tokens + (max_tokens or self.default_max_tokens)

    def admit_call(self, provider: str, model: str, tokens: int, kind: str | None) -> Headers:
        """Charge the call to the model's buckets (faulted calls pass uncharged): the answer's ids and
        rate-limit headers, or `Reply` with the 429 when the buckets refuse."""
        is_openai = provider == "openai"
        adm = Admission(True) if kind is not None else self.limiter.admit(model, tokens)
        wire = openai_wire if is_openai else anthropic_wire
        headers = (openai_ids() if is_openai else anthropic_ids()) + wire.ratelimit_headers(adm)
        if not adm.allowed:
            raise Reply(self.rate_limited(adm, wire.rate_limit_error(model, adm), headers))
        return headers

    @staticmethod
    def rate_limited(adm: Admission, body: bytes, headers: Headers) -> Response:
        wait = adm.retry_after_s
        headers += [
            ("retry-after", str(max(1, math.ceil(wait)))),
            ("retry-after-ms", str(max(1, math.ceil(wait * 1000)))),
        ]
        return json_response(429, body, headers)

    # -- timing ----------------------------------------------------------------------------------

    def stream_parts(
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

    def delay(self, output_tokens: int) -> float:
        return (self.latency_ms + self.per_token_ms * output_tokens) / 1000

    # -- billing ---------------------------------------------------------------------------------

    def drops_usage(self, kind: str | None) -> bool:
        """Whether the answer says nothing of usage (the no_usage fault, counted here); still billed."""
        if kind != "no_usage":
            return False
        self.stats.fault(kind)
        return True

    def finish(
        self,
        response: Response,
        kind: str | None,
        provider: str,
        model: str,
        usage: BilledUsage,
        then: Callable[[], None] | None = None,
    ) -> Response:
        """Bill `usage` just before the last byte, then run `then`; or turn the answer into a cut one
        (neither billed nor `then`)."""
        if kind == "cut":
            self.stats.fault("cut")
            response.action = "cut"
            if response.parts is not None:  # keep the preamble and about half of the events
                keep = max(2, len(response.parts) // 2)
                response.parts = response.parts[:keep]
            return response

        def commit() -> None:
            self.stats.bill(provider, model, usage)
            if then is not None:
                then()

        response.commit = commit
        return response

    @staticmethod
    def now() -> int:
        return int(time.time())
