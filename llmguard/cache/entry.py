"""One cached answer (`CachedResponse`) and the bytes it is stored as (`encode`, `decode`).

A value is bytes this module writes itself (header + JSON metadata + body, with checksums), never
a pickle of a class, so a corrupted or half-written entry is detected, and a later release that
changes `CachedResponse` still reads old entries.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

# Response headers that describe the content; everything else (auth, cookies, rate-limit state,
# transfer framing, request ids) is dropped before anything reaches the disk.
SAFE_HEADERS = frozenset(("content-type", "openai-model", "openai-version", "anthropic-model"))


def safe_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The content-describing headers of `headers`, names lowercased."""
    kept = []
    for name, value in headers:
        lowered = str(name).lower()
        if lowered in SAFE_HEADERS:
            kept.append((lowered, str(value)))
    return kept


def body_checksum(body: bytes) -> str:
    return f"{zlib.crc32(body):08x}"


@dataclass(slots=True)
class CachedResponse:
    """One complete successful answer: the decoded JSON body or the complete SSE stream."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    is_stream: bool = False
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None  # what the original call cost: a hit records it as saved_usd
    created_at: float = field(default_factory=time.time)
    checksum: str = ""  # crc32 of body; a mismatch means a damaged entry
    stale: bool = False  # set by ResponseCache.get(allow_stale=True) for an entry past its TTL

    def __post_init__(self) -> None:
        self.headers = safe_headers(self.headers)
        actual = body_checksum(self.body)
        if self.checksum and self.checksum != actual:
            raise ValueError(f"llmguard: cached body checksum {self.checksum} != {actual}")
        self.checksum = actual

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created_at


# Stored value: MAGIC, len(meta), crc32(meta), meta JSON, body. The body's own crc32 is in meta.
_MAGIC = b"LGC1"
HEADER = struct.Struct("!4sII")
_STORED = tuple(f.name for f in fields(CachedResponse) if f.name not in ("body", "stale"))


def encode(key: str, response: CachedResponse) -> bytes:
    """The bytes stored for `response` under `key`."""
    meta = {name: getattr(response, name) for name in _STORED}
    meta["key"] = key
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    return HEADER.pack(_MAGIC, len(meta_bytes), zlib.crc32(meta_bytes)) + meta_bytes + response.body


def decode_meta(key: str, head: bytes) -> tuple[dict[str, Any], int] | None:
    """(metadata, offset of the body) from the start of a stored value, or None if damaged."""
    if len(head) < HEADER.size:
        return None
    magic, meta_len, meta_crc = HEADER.unpack_from(head)
    end = HEADER.size + meta_len
    if magic != _MAGIC or len(head) < end:
        return None
    meta_bytes = head[HEADER.size : end]
    if zlib.crc32(meta_bytes) != meta_crc:
        return None
    meta = json.loads(meta_bytes)
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    return meta, end


def decode(key: str, raw: Any) -> CachedResponse | None:
    """The response stored under `key`, or None for anything damaged, foreign or half-written."""
    if type(raw) is not bytes:
        return None
    try:
        parsed = decode_meta(key, raw)
        if parsed is None:
            return None
        meta, offset = parsed
        known = {name: meta[name] for name in _STORED if name in meta}
        known["headers"] = [tuple(pair) for pair in known.get("headers", ())]
        return CachedResponse(body=raw[offset:], **known)
    except Exception:  # bad JSON, wrong types, checksum mismatch: all mean "damaged"
        return None
