"""The cache stage of a call: a stored answer, the identical call in flight here or in another
process, a stale answer when the provider is down.

A sampled answer served from the cache (a notebook replay, or `cache_sampled`) is recorded with
`decision="replay"` and `cache_hit=1`; a deterministic one with `decision="cache"`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from typing import Any

from llmguard.intercept.http import ready_response
from llmguard.pipeline.parts import GuardParts
from llmguard.pipeline.steps import CallState, Sleep, WaitFlight
from llmguard.types import CallRequest


def replace_body(call: CallRequest, body: dict[str, Any]) -> CallRequest:
    return dataclasses.replace(call, body=body, model=body.get("model", call.model))


class CacheStep(GuardParts):
    """Answers from the cache, and the in-flight bookkeeping of the call that leads."""

    def _cache_stage(
        self,
        state: CallState,
        call: CallRequest,
        body_changes: dict[str, Any],
        tags: dict[str, Any],
        mode: str,
        lib: Any,
    ) -> Generator[Any, Any, tuple[Any, None] | None]:
        """Serve a stored answer, or wait for the identical call already running, or lead this one."""
        from llmguard.cache.markers import GONE, HIT, FollowerPoll
        from llmguard.cache.store import reads, writes

        layer = self.cache_layer
        assert layer is not None
        answer_changes = {k: v for k, v in body_changes.items() if k != "stream_options"}
        keyed = call if not answer_changes else replace_body(call, {**call.body, **answer_changes})
        found = layer.call_key(keyed, state.endpoint_url, tags, mode)
        if found is None:
            return None
        key = found.key
        state.lookup_key = key
        hit_how = "replay" if found.sampled else "hit"
        if not writes(mode):  # read: serve what is stored, never store
            hit = layer.lookup(key) if reads(mode) else None
            return None if hit is None else self._serve_cached(state, hit, lib, hit_how)
        state.cache_key = key
        if not reads(mode):  # write / refresh: send, then store what comes back
            return None
        claim = layer.flights.claim(key)
        if not claim.is_leader:
            outcome = yield WaitFlight(claim, self.settings.dedup_wait_s)
            if outcome.ok:
                state.cache_key = None
                return self._serve_cached(state, outcome.response, lib, hit_how if outcome.stored else "dedup")
            return None  # the leader failed or took too long: send our own (and store it)
        state.claim = claim
        # One lookup, after taking this machine's lead: another process's leader stores its answer
        # before it lets go, so holding the lead and still missing means nobody has it. (Looking
        # before the lead as well cost a second lookup on every miss, and still left the window
        # between the last look and the lead.)
        led_here = layer.lead_here(key)
        hit = layer.lookup(key)
        if hit is not None:
            if led_here:
                layer.let_go_here(key)
            claim.finish(hit, stored=True)
            state.claim = state.cache_key = None
            return self._serve_cached(state, hit, lib, hit_how)
        if led_here and layer.lead_everywhere(key):
            state.led_across = True
            return None
        poll = FollowerPoll(time.monotonic() + self.settings.dedup_wait_s)
        while True:  # another process is sending this call: wait for its answer in the cache
            delay = poll.next_delay()
            if delay is None:
                return None
            yield Sleep(delay)
            seen = layer.poll(key)
            if seen.state == HIT:
                claim.finish(seen.response)
                state.claim = state.cache_key = None
                return self._serve_cached(state, seen.response, lib, "dedup")
            if seen.state == GONE:
                state.led_across = layer.lead_across_processes(key)
                return None

    def _serve_cached(self, state: CallState, hit: Any, lib: Any, how: str) -> tuple[Any, None]:
        """Answer from the cache (a hit, a replayed sample, a deduplicated flight, or a stale answer)."""
        event = state.event
        event.decision = "replay" if how == "replay" else "cache"
        event.cache_hit = how in ("hit", "replay", "stale")
        event.dedup_hit = how == "dedup"
        event.stale = how == "stale"
        event.model = hit.model or event.model
        event.cost_usd = 0.0
        event.saved_usd = hit.cost_usd
        event.total_ms = (time.perf_counter() - state.started) * 1000
        if event.cache_hit and self.cache_layer is not None:
            self.cache_layer.counted_hit(hit.cost_usd)
        self._release(state)
        self._write_row(state)
        headers = [*hit.headers, ("x-should-retry", "false"), ("llmguard-cache", how)]
        return ready_response(lib, hit.status, headers, hit.body), None

    def _stale_answer(self, state: CallState, lib: Any, failure: str) -> tuple[Any, None] | None:
        """Retries and fallbacks are spent: an expired cached answer beats an error, if allowed."""
        if not self.settings.serve_stale or state.lookup_key is None or self.cache_layer is None:
            return None
        stale = self.cache_layer.stale(state.lookup_key)
        if stale is None:
            return None
        self._end_flight(state)
        state.event.error_message = f"llmguard: the provider failed ({failure}); served a stale cached answer"
        return self._serve_cached(state, stale, lib, "stale")

    def _end_flight(self, state: CallState, error: BaseException | None = None) -> None:
        if state.cache_key is not None and self.cache_layer is not None:
            self.cache_layer.failed(state.cache_key, state.claim, state.led_across, error)
        state.cache_key = state.claim = None
        state.led_across = False
