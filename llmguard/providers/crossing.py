"""A fallback to another provider's model: the request in that provider's wire format, its answer
back in the shape of the caller's SDK.

`fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]}` sends the OpenAI chat request to
Anthropic's Messages API when gpt-4o-mini cannot answer, and the caller's `openai` client gets a
`chat.completion` (or its chunks) as if OpenAI had answered; the ledger records the Anthropic call
as it was billed. The wire work is `providers/translate/`; this module adds where the other
provider is and with which key: the same environment variables its own SDK reads
(`ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY` / `OPENAI_BASE_URL`).

Only chat calls cross (OpenAI chat completions ⇄ Anthropic messages). A streamed answer is read
whole and then translated, so a crossed stream arrives in one piece: correct, but not incremental.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmguard.providers import anthropic as anthropic_adapter
from llmguard.providers import openai as openai_adapter
from llmguard.providers import translate
from llmguard.providers.translate.common import TranslationError
from llmguard.types import CallRequest

ANTHROPIC_VERSION = "2023-06-01"
_WHERE = {  # provider -> (key variable, base URL variable, default base URL)
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
}
_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage")

__all__ = ["Crossing", "CrossingError", "TranslationError", "cross_request", "missing_credentials", "provider_of"]


class CrossingError(ValueError):
    """The other provider cannot be called (no key for it); the message says what to set."""


def provider_of(model: str) -> str | None:
    """The provider a model name belongs to, or None when the name does not say (a local model,
    a deployment name): such a fallback stays on the caller's provider."""
    name = model.lower()
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith(_OPENAI_PREFIXES):
        return "openai"
    return None


def missing_credentials(provider: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why `provider` cannot be called from here, or None."""
    env = os.environ if environ is None else environ
    key_name = _WHERE[provider][0]
    if env.get(key_name):
        return None
    return f"set {key_name} (and {_WHERE[provider][1]} for a gateway or proxy) so llmguard can call it"


@dataclass(frozen=True, slots=True)
class Crossing:
    """One translated attempt: what the answer must be turned back into."""

    caller: str  # the provider whose SDK made the call
    target: str
    model: str
    stream: bool
    include_usage: bool  # the caller's own stream_options.include_usage
    json_tool: str | None


def cross_request(
    lib: Any,
    original: Any,
    call: CallRequest,
    body: Mapping[str, Any],
    model: str,
    target: str,
    environ: Mapping[str, str] | None = None,
) -> tuple[Any, CallRequest, Crossing]:
    """(request to the other provider, its CallRequest, how to translate the answer back)."""
    caller = call.provider
    if not (caller == "openai" and call.endpoint == "chat.completions" and target == "anthropic") and not (
        caller == "anthropic" and call.endpoint == "messages" and target == "openai"
    ):
        raise TranslationError(
            f"a {caller} {call.endpoint} call for a {target} model",
            "only chat calls fall back across providers; use a fallback of the same provider",
        )
    why = missing_credentials(target, environ)
    if why is not None:
        raise CrossingError(f"llmguard: the fallback {model!r} is a {target} model: {why}")
    env = os.environ if environ is None else environ
    key_name, base_name, default_base = _WHERE[target]
    key, base = env[key_name], (env.get(base_name) or default_base).rstrip("/")
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    if target == "anthropic":
        translated = translate.openai_chat_to_anthropic(dict(body), model)
        url, path = base + "/v1/messages", "/v1/messages"
        headers = [("x-api-key", key), ("anthropic-version", ANTHROPIC_VERSION)]
        adapter: Any = anthropic_adapter
    else:
        translated = translate.anthropic_to_openai_chat(dict(body), model)
        url, path = base + "/chat/completions", "/chat/completions"
        headers = [("authorization", f"Bearer {key}")]
        adapter = openai_adapter
    content = json.dumps(translated.body, separators=(",", ":"), ensure_ascii=False).encode()
    request = lib.Request(
        "POST",
        url,
        headers=[*headers, ("content-type", "application/json"), ("accept", "application/json")],
        content=content,
        extensions=original.extensions,
    )
    crossed_call = adapter.parse_request(path, content)
    return request, crossed_call, Crossing(caller, target, model, stream, include_usage, translated.json_tool)


def translate_answer(crossing: Crossing, status: int, content: bytes, is_stream: bool) -> tuple[bytes, str]:
    """(body, content type) of the other provider's answer in the caller's SDK shape."""
    if status >= 400:
        if crossing.caller == "openai":
            return translate.anthropic_error_to_openai(content, status), "application/json"
        return translate.openai_error_to_anthropic(content, status), "application/json"
    if is_stream:
        out: list[bytes] = []
        if crossing.caller == "openai":
            sse: Any = translate.AnthropicToOpenAIStream(crossing.model, crossing.include_usage, crossing.json_tool)
        else:
            sse = translate.OpenAIToAnthropicStream(crossing.model)
        out += sse.feed_raw(content)
        return b"".join(out), "text/event-stream; charset=utf-8"
    answer = json.loads(content)
    if crossing.caller == "openai":
        shaped = translate.anthropic_message_to_openai_chat_completion(answer, crossing.model, crossing.json_tool)
    else:
        shaped = translate.openai_chat_completion_to_anthropic_message(answer, crossing.model)
    return json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode(), "application/json"
