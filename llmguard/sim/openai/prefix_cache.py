"""Simulated prompt prefix caching, the way OpenAI reports it.

OpenAI caches prompts of 1024+ tokens by prefix, in steps of 1024 tokens and then 128-token
increments, and reports the cached part as `prompt_tokens_details.cached_tokens`. The simulator keeps,
per model, the hashes of every such prefix it has seen; a prompt's cached tokens are the longest of
its prefixes seen before. The token sequence only needs to be stable, not identical to the provider's:
it is the message contents tokenized with the encoding `counting.py` counts with, separated by
per-message markers, and the result is capped at the reported prompt tokens.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from typing import Any

from llmguard.sim.counting import encoding_for

MIN_PREFIX = 1024
INCREMENT = 128
_MESSAGE_MARK = -1
_PART_MARK = -2


def _content_ids(encoding: Any, content: Any, out: list[int]) -> None:
    if content is None:
        return
    if isinstance(content, str):
        out.extend(encoding.encode_ordinary(content))
    elif isinstance(content, list):
        for part in content:
            out.append(_PART_MARK)
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.extend(encoding.encode_ordinary(part["text"]))
            else:  # images, tool blocks: one stable pseudo-token for the whole part
                digest = hashlib.blake2b(repr(part).encode(), digest_size=4).digest()
                out.append(int.from_bytes(digest, "little") & 0x3FFFFFFF)
    else:
        out.extend(encoding.encode_ordinary(str(content)))


def prompt_token_ids(messages: list[Any], model: str, system: Any = None) -> list[int]:
    """A stable token sequence for a chat prompt (system first), for prefix matching only."""
    encoding = encoding_for(model)
    ids: list[int] = []
    if system is not None:
        ids += [_MESSAGE_MARK, _MESSAGE_MARK, _MESSAGE_MARK]
        _content_ids(encoding, system, ids)
    for message in messages:
        ids += [_MESSAGE_MARK, _MESSAGE_MARK, _MESSAGE_MARK]
        if not isinstance(message, dict):
            _content_ids(encoding, str(message), ids)
            continue
        for key, value in message.items():
            if key == "content":
                _content_ids(encoding, value, ids)
            elif isinstance(value, str):
                ids.extend(encoding.encode_ordinary(value))
    return ids


def checkpoints(length: int) -> list[int]:
    """Prefix lengths a prompt of `length` tokens can hit: 1024, 1152, 1280, ..."""
    if length < MIN_PREFIX:
        return []
    return list(range(MIN_PREFIX, length + 1, INCREMENT))


class PrefixCache:
    """Per-model sets of seen prefix hashes, bounded (oldest forgotten first)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def lookup_prompt(self, model: str, messages: list[Any], prompt_tokens: int, system: Any = None) -> int:
        """Cached tokens of a chat-shaped prompt of `prompt_tokens` (one too short is not tokenized)."""
        if prompt_tokens < MIN_PREFIX:
            return 0
        return self.lookup_and_store(model, prompt_token_ids(messages, model, system=system), prompt_tokens)

    def lookup_and_store(self, model: str, ids: list[int], cap: int) -> int:
        """Cached tokens for this prompt (0 below 1024 tokens); remembers its prefixes for next time."""
        points = checkpoints(min(len(ids), cap))
        if not points:
            return 0
        data = array("q", ids).tobytes()
        hasher = hashlib.blake2b(digest_size=16)
        keys: list[tuple[str, bytes]] = []
        done = 0
        for point in points:
            hasher.update(data[done * 8 : point * 8])
            done = point
            keys.append((model, hasher.copy().digest()))
        cached = 0
        with self._lock:
            for point, key in zip(points, keys, strict=True):
                if key in self._seen:
                    cached = point
                    self._seen.move_to_end(key)
                else:
                    self._seen[key] = None
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        return cached
