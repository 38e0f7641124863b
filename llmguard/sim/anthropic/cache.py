"""Anthropic prompt caching, the way Anthropic documents it (explicit `cache_control` breakpoints).

The prompt is read in Anthropic's order — `tools`, then `system`, then `messages` — as a sequence of
blocks. A block carrying `cache_control: {"type": "ephemeral"}` (TTL 5 minutes, or `"ttl": "1h"`)
is a breakpoint: the cacheable prefix ends there. A top-level `cache_control` on the request puts
one on the last block of the last message (automatic caching). On each call:

* the longest breakpoint prefix seen before (same model) and not yet expired is **read**
  (`cache_read_input_tokens`); the read restarts that entry's TTL;
* the tokens from there to the last breakpoint are **written** (`cache_creation_input_tokens`),
  each stretch between two breakpoints with the TTL of the breakpoint that ends it
  (`usage.cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`);
* the tokens after the last breakpoint are `input_tokens`;
* a breakpoint whose prefix is shorter than the model's minimum cacheable length
  (`min_cacheable_tokens`) is ignored, so a short prompt is all `input_tokens`, without error.

The request is refused (400, the real messages) for more than 4 breakpoints, a `ttl` other than
`5m`/`1h`, or a 1-hour breakpoint after a 5-minute one.

**Token convention of the segments.** Every segment is counted by `counting.message_tokens` itself,
on a fragment of the request: a tool is the JSON text of its definition; the system prompt opens
with the per-message overhead (3 tokens) and then its blocks; each message opens with its overhead
and its non-content fields (`role`: 1 token) and then its content blocks (block text via tiktoken,
other blocks as their JSON text, a string content as one block). The reply priming (3 tokens) comes
last, after every breakpoint, so it is always in `input_tokens`; any token the fragments do not
account for is put there too, so input + read + write always equals `message_tokens(messages,
model, system=system, tools=tools)` for the request. Prefixes are identified by a hash of their
blocks with `cache_control` left out (moving a breakpoint does not change the content before it);
a string system prompt or content hashes as the one text block it stands for.

The clock is injectable (`AnthropicPromptCache.clock`, monotonic seconds) so tests can step past
five minutes or an hour without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmguard.sim.counting import REPLY_PRIMING, message_tokens

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4

# Minimum cacheable prompt lengths (Anthropic's prompt-caching docs, "Cache limitations", as quoted by
# OpenRouter's and rig's provider docs): 4096 for Opus 4.5-4.7 and Haiku 4.5, 2048 for Sonnet 4.6 and
# the Haiku 3.x models, 1024 for every other model.
_MIN_BY_PREFIX = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-7", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MIN_CACHEABLE = 1024

_TTL_ORDER = (
    "{loc}.cache_control.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' cache_control "
    "block. Note that blocks are processed in the following order: `tools`, `system`, `messages`."
)


class CacheControlError(ValueError):
    """A request whose `cache_control` markers the real API refuses; the message is the API's."""


def min_cacheable_tokens(model: str) -> int:
    name = model.lower()
    for prefix, tokens in _MIN_BY_PREFIX:
        if name.startswith(prefix):
            return tokens
    return DEFAULT_MIN_CACHEABLE


@dataclass(frozen=True, slots=True)
class Breakpoint:
    tokens: int  # prompt tokens from the start through the marked block
    key: bytes  # hash of that prefix (cache_control markers left out)
    ttl: str  # "5m" or "1h"


@dataclass(frozen=True, slots=True)
class PromptLayout:
    total: int  # == counting.message_tokens(...) for the request
    breakpoints: tuple[Breakpoint, ...]


@dataclass(frozen=True, slots=True)
class CacheUse:
    """How one call's prompt tokens split; `input_tokens + read + written == total`."""

    input_tokens: int
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def total(self) -> int:
        return self.input_tokens + self.read + self.written


# -- the prompt as blocks ---------------------------------------------------------------------------


def _ttl(loc: str, marker: Any) -> str | None:
    """The breakpoint's TTL, None for no marker (`cache_control: null` is allowed)."""
    if marker is None:
        return None
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        raise CacheControlError(f"{loc}.cache_control.type: Input should be 'ephemeral'")
    ttl = marker.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise CacheControlError(f"{loc}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _without_marker(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


class _Walker:
    """Feeds blocks in order, keeping the running token count and prefix hash."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.tokens = 0
        self.hasher = hashlib.blake2b(model.encode(), digest_size=16)
        self.breakpoints: list[Breakpoint] = []
        self._last_ttl: str | None = None

    def count(self, **fragment: Any) -> int:
        """The tokens of a fragment of the request, without the reply priming."""
        return message_tokens(fragment.pop("messages", []), self.model, **fragment) - REPLY_PRIMING

    def feed(self, tag: str, content: Any, tokens: int) -> None:
        self.tokens += tokens
        data = json.dumps([tag, _without_marker(content)], sort_keys=True, separators=(",", ":"), default=str)
        self.hasher.update(len(data).to_bytes(8, "little") + data.encode())

    def mark(self, loc: str, ttl: str | None) -> None:
        if ttl is None:
            return
        if ttl == "1h" and self._last_ttl == "5m":
            raise CacheControlError(_TTL_ORDER.format(loc=loc))
        self._last_ttl = ttl
        self.breakpoints.append(Breakpoint(self.tokens, self.hasher.copy().digest(), ttl))


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _marker(block: Any) -> Any:
    return block.get("cache_control") if isinstance(block, dict) else None


def prompt_layout(
    model: str, messages: list[Any], system: Any = None, tools: Any = None, auto: Any = None
) -> PromptLayout:
    """The request's breakpoints, in token counts and prefix hashes (raises `CacheControlError`).

    `auto` is the request's top-level `cache_control` (automatic caching)."""
    walk = _Walker(model)
    _walk_tools(walk, tools)
    _walk_system(walk, system)
    _walk_messages(walk, messages, _ttl("cache_control", auto) if auto is not None else None)
    if len(walk.breakpoints) > MAX_BREAKPOINTS:
        raise CacheControlError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(walk.breakpoints)}."
        )
    total = message_tokens(messages, model, system=system, tools=tools)
    points = tuple(b for b in walk.breakpoints if b.tokens <= total)  # guards a counter that stops adding up
    return PromptLayout(total, points)


def _walk_tools(walk: _Walker, tools: Any) -> None:
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            walk.feed("tool", tool, walk.count(tools=[tool]))
            walk.mark(f"tools.{i}", _ttl(f"tools.{i}", _marker(tool)))
    elif tools:
        walk.feed("tools", tools, walk.count(tools=tools))


def _walk_system(walk: _Walker, system: Any) -> None:
    if system is None:
        return
    head = walk.count(system=[])
    walk.feed("system", None, head)
    if isinstance(system, list):
        for i, block in enumerate(system):
            walk.feed("block", block, walk.count(system=[block]) - head)
            walk.mark(f"system.{i}", _ttl(f"system.{i}", _marker(block)))
    elif isinstance(system, str):
        walk.feed("block", _text_block(system), walk.count(system=system) - head)
    else:
        walk.feed("block", system, walk.count(system=system) - head)


def _walk_messages(walk: _Walker, messages: list[Any], auto_ttl: str | None) -> None:
    empty = walk.count(messages=[{}])
    for m, message in enumerate(messages):
        last_message = m == len(messages) - 1
        if not isinstance(message, dict):
            walk.feed("message", message, walk.count(messages=[message]))
            continue
        fields = {k: v for k, v in message.items() if k != "content"}
        walk.feed("message", fields, walk.count(messages=[fields]))
        content = message.get("content")
        if isinstance(content, list):
            blocks = [
                (b, block, walk.count(messages=[{"content": [block]}]) - empty) for b, block in enumerate(content)
            ]
        elif content is not None:
            blocks = [(0, content, walk.count(messages=[{"content": content}]) - empty)]
        else:
            blocks = []
        for b, block, tokens in blocks:
            loc = f"messages.{m}.content.{b}"
            walk.feed("block", _text_block(block) if isinstance(block, str) else block, tokens)
            ttl = _ttl(loc, _marker(block))
            if auto_ttl is not None and last_message and b == len(blocks) - 1:
                if ttl is not None and ttl != auto_ttl:
                    raise CacheControlError(
                        f"Top-level cache_control has ttl='{auto_ttl}' but the target block already has "
                        f"cache_control with ttl='{ttl}'"
                    )
                ttl = auto_ttl
            walk.mark(loc, ttl)


# -- the cache --------------------------------------------------------------------------------------


class AnthropicPromptCache:
    """Breakpoint prefixes seen per model, each with an expiry on `clock` (bounded, oldest out first)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (expiry, ttl s)
        self._max = max_entries
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup_and_store(self, model: str, layout: PromptLayout) -> CacheUse:
        """Split this call's prompt into read / written / uncached tokens, and remember its prefixes."""
        minimum = min_cacheable_tokens(model)
        points = [b for b in layout.breakpoints if b.tokens >= minimum]
        if not points:
            return CacheUse(layout.total)
        now = self.clock()
        entries = self._entries
        with self._lock:
            hit = -1
            for i in range(len(points) - 1, -1, -1):
                entry = entries.get(points[i].key)
                if entry is not None and entry[0] > now:
                    hit = i
                    break
            read = 0
            if hit >= 0:
                point = points[hit]
                ttl_s = max(entries[point.key][1], TTL_SECONDS[point.ttl])
                entries[point.key] = (now + ttl_s, ttl_s)
                entries.move_to_end(point.key)
                read = point.tokens
            done, write_5m, write_1h = read, 0, 0
            for point in points[hit + 1 :]:
                stretch, done = point.tokens - done, point.tokens
                if point.ttl == "1h":
                    write_1h += stretch
                else:
                    write_5m += stretch
                ttl_s = TTL_SECONDS[point.ttl]
                entries[point.key] = (now + ttl_s, ttl_s)
                entries.move_to_end(point.key)
            while len(entries) > self._max:
                entries.popitem(last=False)
        return CacheUse(layout.total - points[-1].tokens, read, write_5m, write_1h)
