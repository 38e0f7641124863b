"""One call's way in: parse it, tag it, rewrite it (route, default bound, usage option), then the cache
stage and the model chain; and its way out when it is cancelled or interrupted."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Generator
from contextvars import ContextVar
from typing import Any

from llmguard import context, redact
from llmguard.intercept.http import rebuild_request
from llmguard.intercept.meter import ResponseMeter
from llmguard.ledger.sqlite import CallEvent, safe_str
from llmguard.pipeline.parts import GuardParts
from llmguard.pipeline.steps import CallState, Send
from llmguard.providers import is_sdk_retry
from llmguard.providers.base import body_with_changes
from llmguard.types import CallRequest, ProviderParseError

# The last call in this context whose attempts llmguard spent on a transport error. The Anthropic
# SDK retries such errors itself; its retry of the same body fails fast here instead of multiplying.
_spent: ContextVar[tuple[bytes, BaseException] | None] = ContextVar("llmguard_spent", default=None)


def apply_tags(event: CallEvent, tags: dict[str, Any]) -> None:
    extra = {}
    for key, value in tags.items():
        if key in ("tenant", "user", "feature", "prompt_version", "notebook"):
            setattr(event, key, None if value is None else safe_str(value))  # a bad __str__ loses no row
        elif key == "cell":
            event.cell = value if isinstance(value, int) else None
        elif key == "priority":
            event.priority = value
        else:
            extra[key] = value
    if extra:
        event.tags = extra


class CallFlow(GuardParts):
    """The start and the abandoned end of every call."""

    def _pipeline(self, request: Any, lib: Any, adapter: Any) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        started = time.perf_counter()
        try:
            body = request.content
        except Exception:  # a streaming upload (files): not a metered call
            body = None
        call = None
        parse_error = None
        if body is not None:
            try:
                call = adapter.parse_request(request.url.path, body)
            except ProviderParseError as exc:
                parse_error = str(exc)
        if call is None:
            response = yield Send(request)
            if parse_error is not None:
                self._record_unreadable(request, adapter, response, parse_error, started)
            return response, None

        spent = _spent.get()
        if spent is not None and is_sdk_retry(request):
            if spent[0] == hashlib.blake2b(body, digest_size=16).digest():
                raise spent[1]  # the SDK retrying what llmguard already retried: fail fast
        if spent is not None:
            _spent.set(None)

        tags = context.current_tags() if context.has_tags() else {}
        url = request.url
        event = CallEvent(
            provider=call.provider,
            endpoint=call.endpoint,
            base_url=f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}",
            model=call.model,
            requested_model=call.model,
            stream=call.stream,
        )
        if tags:
            apply_tags(event, tags)
        secrets = request  # its key headers and `?key=`: scrubbed against lazily, only if an error is recorded
        state = CallState(call=call, adapter=adapter, event=event, started=started, secrets=secrets, caller=adapter)
        state.raw_body = body
        # the whole URL keys the cache: path-routed gateways, Azure deployments and proxied accounts
        # share a host but not their answers
        target = url.raw_path.decode("ascii", "replace")
        state.endpoint_url = f"{event.base_url}{redact.without_secret_params(target) if '?' in target else target}"
        state.steps = context.open_steps()  # the steps this call runs inside, timed when it ends

        try:
            return (yield from self._guarded(state, request, call, tags, lib))
        except BaseException as exc:
            self._end_flight(state, exc)  # followers of this call are never left waiting
            if not state.closed:  # cancelled, interrupted, or a failure of ours: still one row
                self._close_abandoned(state, exc)
            raise

    def _guarded(
        self, state: CallState, request: Any, call: CallRequest, tags: dict[str, Any], lib: Any
    ) -> Generator[Any, Any, tuple[Any, ResponseMeter | None]]:
        """Routing, length policy, cache, then the fallback chain for one parsed call."""
        adapter, event = state.adapter, state.event
        body_changes: dict[str, Any] = {}
        routed = self.router.route(call.model, tags) if self.router.routes else call.model
        if routed != call.model:
            moved = adapter.path_for_model(request.url.raw_path, routed)
            if moved is None:
                body_changes["model"] = routed
            else:  # the model is named in the path
                request = rebuild_request(lib, request, request.content, moved)
            event.model = routed
        if self.settings.default_max_tokens is not None and call.max_tokens is None:
            bound = adapter.output_bound_changes(call, self.settings.default_max_tokens)
            if bound:
                body_changes.update(bound)
                call.max_tokens = self.settings.default_max_tokens
        usage_option = adapter.usage_option_changes(call)
        if usage_option:
            body_changes.update(usage_option)
            state.drop_usage_chunk = True  # the meter drops the usage-only chunk the user did not ask for
        if self.cache_layer is not None:
            mode = safe_str(tags.get("cache", self.settings.cache))
            if mode != "off":
                served = yield from self._cache_stage(state, call, body_changes, tags, mode, lib)
                if served is not None:
                    return served

        if body_changes:  # only a call that is sent needs its request rewritten
            request = rebuild_request(lib, request, body_with_changes(request.content, call.body, body_changes))
        self._apply_timeout(request)
        return (yield from self._send_through_chain(state, request, call, body_changes, tags, lib))

    def _close_abandoned(self, state: CallState, exc: BaseException) -> None:
        """The call left the pipeline without an answer: release its holds once and write its row.

        A request the provider received is billed by it even if nobody reads the answer, so such a
        call is recorded (and charged to the budget) at its worst case, marked approximate.
        """
        event = state.event
        if isinstance(exc, KeyboardInterrupt):
            kind = "interrupted"
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            kind = "cancelled"
        else:
            kind = "llmguard_error"
        event.status = "cancelled" if kind != "llmguard_error" else "error"
        event.error_type = kind
        event.total_ms = (time.perf_counter() - state.started) * 1000
        cost = 0.0
        if state.sent:
            self._record_worst_case(state)
            cost = event.cost_usd or 0.0
            what = "after it was sent; recorded at its worst case, as the provider may bill it"
        else:
            event.cost_usd = 0.0
            what = "before it was sent; nothing was billed"
        event.error_message = f"llmguard: the call was {kind.replace('_', ' ')} {what}"
        if kind == "llmguard_error":
            event.error_message = self.scrub(f"llmguard: internal error {type(exc).__name__}: {exc}", state.secrets)
        if state.reservation is not None:
            self.budget.settle(state.reservation, cost, event.input_tokens + event.output_tokens)
            state.reservation = None
        if state.ticket is not None:
            charged = (event.input_tokens + event.output_tokens) if state.sent else 0
            self.limiter.answered(state.ticket)  # its bucket must start refilling even so
            self.limiter.reconcile(state.ticket, charged)
            state.ticket = None
        self._write_row(state)
