"""OpenAI chat ⇄ Anthropic Messages translation, so a fallback chain may cross providers.

A chain such as `fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]}` sends the caller's OpenAI
chat request to Anthropic and hands the answer back in the shape the caller's SDK expects (what
LiteLLM users expect). Pure functions on dicts and bytes, plus two small stateful stream
translators; no I/O, nothing from the guard. One module a job:

- `to_anthropic` (with `to_anthropic_content`, `to_anthropic_tools`): requests, OpenAI → Anthropic;
- `to_openai`: requests, Anthropic → OpenAI;
- `answers` and `usage`: whole answers and their token usage, both ways;
- `stream_to_openai` / `stream_to_anthropic`: SSE streams, both ways;
- `error_bodies`: error bodies, both ways;
- `common`, `shapes`, `wire`: the error and record types, shape checks, JSON and SSE framing.

Each module's docstring says what maps to what. This package re-exports the public names, so
callers import from `llmguard.providers.translate` only. The names load on first use (PEP 562):
a guard whose chains never cross providers never imports the translators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmguard.providers.translate.answers import (
        anthropic_message_to_openai_chat_completion,
        openai_chat_completion_to_anthropic_message,
    )
    from llmguard.providers.translate.common import Translated, TranslationError
    from llmguard.providers.translate.error_bodies import anthropic_error_to_openai, openai_error_to_anthropic
    from llmguard.providers.translate.stream_to_anthropic import OpenAIToAnthropicStream
    from llmguard.providers.translate.stream_to_openai import AnthropicToOpenAIStream
    from llmguard.providers.translate.to_anthropic import (
        ANTHROPIC_MAX_TEMPERATURE,
        DEFAULT_MAX_TOKENS,
        openai_chat_to_anthropic,
    )
    from llmguard.providers.translate.to_anthropic_tools import JSON_OBJECT_TOOL
    from llmguard.providers.translate.to_openai import OPENAI_MAX_STOP, anthropic_to_openai_chat
    from llmguard.providers.translate.usage import anthropic_usage_to_openai, openai_usage_to_anthropic
    from llmguard.providers.translate.wire import FINISH_REASON, STOP_REASON

_HOME = {  # public name -> the module that defines it
    "ANTHROPIC_MAX_TEMPERATURE": "llmguard.providers.translate.to_anthropic",
    "AnthropicToOpenAIStream": "llmguard.providers.translate.stream_to_openai",
    "DEFAULT_MAX_TOKENS": "llmguard.providers.translate.to_anthropic",
    "FINISH_REASON": "llmguard.providers.translate.wire",
    "JSON_OBJECT_TOOL": "llmguard.providers.translate.to_anthropic_tools",
    "OPENAI_MAX_STOP": "llmguard.providers.translate.to_openai",
    "OpenAIToAnthropicStream": "llmguard.providers.translate.stream_to_anthropic",
    "STOP_REASON": "llmguard.providers.translate.wire",
    "Translated": "llmguard.providers.translate.common",
    "TranslationError": "llmguard.providers.translate.common",
    "anthropic_error_to_openai": "llmguard.providers.translate.error_bodies",
    "anthropic_message_to_openai_chat_completion": "llmguard.providers.translate.answers",
    "anthropic_to_openai_chat": "llmguard.providers.translate.to_openai",
    "anthropic_usage_to_openai": "llmguard.providers.translate.usage",
    "openai_chat_completion_to_anthropic_message": "llmguard.providers.translate.answers",
    "openai_chat_to_anthropic": "llmguard.providers.translate.to_anthropic",
    "openai_error_to_anthropic": "llmguard.providers.translate.error_bodies",
    "openai_usage_to_anthropic": "llmguard.providers.translate.usage",
}


__all__ = [
    "ANTHROPIC_MAX_TEMPERATURE",
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASON",
    "JSON_OBJECT_TOOL",
    "OPENAI_MAX_STOP",
    "STOP_REASON",
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "Translated",
    "TranslationError",
    "anthropic_error_to_openai",
    "anthropic_message_to_openai_chat_completion",
    "anthropic_to_openai_chat",
    "anthropic_usage_to_openai",
    "openai_chat_completion_to_anthropic_message",
    "openai_chat_to_anthropic",
    "openai_error_to_anthropic",
    "openai_usage_to_anthropic",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
