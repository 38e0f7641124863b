"""What the cache may serve, and under which key: the cache modes, `is_cacheable` and `cache_key`.

Kept apart from the store so a key can be computed (and a policy decided) without opening, or
even importing, anything on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from llmguard.types import CallRequest

# Bumped when the key material changes shape, so old entries simply stop matching.
KEY_VERSION = 1

# ---- cache modes ---------------------------------------------------------------------------

MODES = ("on", "off", "read", "write", "refresh")
_READS = frozenset(("on", "read"))
_WRITES = frozenset(("on", "write", "refresh"))


def check_mode(mode: str) -> str:
    """`mode` if it is a cache mode; a ValueError that lists the valid ones otherwise."""
    if mode not in MODES:
        raise ValueError(
            f"llmguard: cache mode {mode!r} is not one of {', '.join(MODES)}; "
            "use e.g. llmguard.tag(cache='off') to skip the cache for some calls"
        )
    return mode


def reads(mode: str) -> bool:
    """Whether a call in this mode may be answered from the cache."""
    return mode in _READS


def writes(mode: str) -> bool:
    """Whether a call in this mode stores its answer ("refresh" overwrites what was there)."""
    return mode in _WRITES


def is_deterministic(call: CallRequest) -> bool:
    """An answer the same request always gets: embeddings, or one choice at temperature 0 or a seed."""
    if call.endpoint == "embeddings":
        return True
    return call.n == 1 and (call.temperature == 0 or call.seed is not None)


def is_sampled_draw(call: CallRequest) -> bool:
    """One sampled answer (temperature > 0 or unset, no seed): kept only by `cache_sampled` or replay."""
    return call.endpoint != "embeddings" and call.n == 1 and not is_deterministic(call)


def is_cacheable(call: CallRequest, mode: str, cache_sampled: bool) -> bool:
    """Whether the cache may take part in this call at all.

    Only deterministic work by default: an answer sampled at temperature > 0 without a seed is one
    draw among many, and replaying it would silently turn variety into repetition. Embeddings are
    deterministic. A user who wants sampled answers frozen opts in (notebook kernels replay them
    under keys of their own: `replay.py`).
    """
    if check_mode(mode) == "off":
        return False
    if is_deterministic(call):
        return True
    return cache_sampled and is_sampled_draw(call)


# ---- the key -------------------------------------------------------------------------------

_OPENAI_IGNORED = frozenset(("user", "metadata", "store", "safety_identifier", "prompt_cache_key"))
_SAMPLING_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}
# (provider, endpoint) -> (fields whose API default cannot change the answer, fields that never do)
_KEY_RULES: dict[tuple[str, str], tuple[dict[str, Any], frozenset[str]]] = {
    ("openai", "chat.completions"): (
        {**_SAMPLING_DEFAULTS, "logprobs": False, "stream": False, "parallel_tool_calls": True},
        _OPENAI_IGNORED,
    ),
    ("openai", "completions"): (
        {**_SAMPLING_DEFAULTS, "best_of": 1, "echo": False, "stream": False},
        _OPENAI_IGNORED,
    ),
    ("openai", "responses"): (
        {
            "temperature": 1,
            "top_p": 1,
            "stream": False,
            "parallel_tool_calls": True,
            "truncation": "disabled",
            "background": False,
        },
        _OPENAI_IGNORED,
    ),
    ("openai", "embeddings"): ({}, frozenset(("user",))),
    ("anthropic", "messages"): ({"stream": False, "temperature": 1}, frozenset(("metadata",))),
}
_NO_RULES: tuple[dict[str, Any], frozenset[str]] = ({}, frozenset())


def _same_value(value: Any, default: Any) -> bool:
    """`value == default` without Python's True == 1 and False == 0 conflation."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default) and value == default
    return value == default


def canonical_body(call: CallRequest) -> dict[str, Any]:
    """The request body reduced to what can change the answer.

    Top-level nulls mean "the default" in these APIs, so they go; integral floats become ints so
    `temperature: 0.0` and `temperature: 0` share a key. `stream: true` stays (a streamed answer is
    stored as SSE bytes). `stream_options` goes, except `include_usage`, which adds a chunk the
    user's SDK stream then shows.
    """
    defaults, ignored = _KEY_RULES.get((call.provider, call.endpoint), _NO_RULES)
    out: dict[str, Any] = {}
    for name, value in call.body.items():
        if value is None or name in ignored:
            continue
        if name == "stream_options":
            if isinstance(value, dict) and value.get("include_usage") is True:
                out[name] = {"include_usage": True}
            continue
        if type(value) is float and value.is_integer():
            value = int(value)
        if name in defaults and _same_value(value, defaults[name]):
            continue
        out[name] = value
    return out


def _tag_text(value: Any) -> str | None:
    return None if value is None else str(value)


def cache_key(call: CallRequest, base_url: str, tags: Mapping[str, Any], key_tags: Iterable[str] = ()) -> str:
    """A sha256 hex of everything that can change the answer, and of nothing else.

    Provider, base URL, endpoint and the canonical body (sorted keys, compact separators), plus the
    context: `prompt_version` and `tenant` always (a tenant never sees another tenant's answer),
    and the tags named in `key_tags` (retrieved document ids, ...). Headers, and so API keys, never
    take part.
    """
    context = {
        "prompt_version": _tag_text(tags.get("prompt_version")),
        "tenant": _tag_text(tags.get("tenant")),
    }
    extra = {name: tags.get(name) for name in key_tags if name not in context}
    head = [KEY_VERSION, call.provider, base_url.rstrip("/"), call.endpoint, context, extra]
    digest = hashlib.sha256()
    digest.update(json.dumps(head, sort_keys=True, separators=(",", ":"), default=str).encode())
    digest.update(b"\n")
    digest.update(json.dumps(canonical_body(call), sort_keys=True, separators=(",", ":"), default=str).encode())
    return digest.hexdigest()
