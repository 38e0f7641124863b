"""Errors llmguard itself raises, and how to tell llmguard's refusals inside the SDKs' own errors.

Refusals of calls reach user code as the SDK's own error types (status 429 etc. with a message
starting `llmguard:`), so existing `except openai.RateLimitError` handlers keep working.
`refusal_of` tells such an error from one the provider sent: the `llmguard-refusal` response header
or an `llmguard_` error type (budget, rate limit, fallback), a `TimeoutError` cause saying
`llmguard:` (the call's deadline), or the note llmguard puts before the provider's message when it
stops retrying (retry budget, `max_retry_wait_s`). It reads attributes only: no SDK is imported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llmguard.config import ConfigError
from llmguard.context import StepTimeout

REFUSAL_PREFIX = "llmguard:"
REFUSAL_HEADER = "llmguard-refusal"  # set on every refusal llmguard answers in the SDK's error shape
REFUSAL_TYPE_PREFIX = "llmguard_"  # the error body's `type` of those refusals
RETRY_NOTES = {"retry_budget": "retry budget spent", "retry_wait": "max_retry_wait_s="}
PROVIDER_SAID = ". The provider said: "

_LIMIT = {"rate_limit": "rate limit", "retry_budget": "retry budget", "retry_wait": "max_retry_wait_s"}
_DEFAULT_CHANGE = {"retry_wait": "raise max_retry_wait_s"}
_BUDGET = re.compile(r"(?P<limit>.+?) would be exceeded \((?P<amount>.+)\)$", re.DOTALL)
_BUDGET_ALTERNATIVES = re.compile(r", lower max_tokens, or (?:use a cheaper model|shorten the prompt)$")
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")


@dataclass(frozen=True)
class Refusal:
    """llmguard's part of an SDK error: which limit, what it says, and the provider's own words (if any)."""

    kind: str  # the header's kind (budget, rate_limit, deadline, fallback), or retry_budget / retry_wait
    message: str  # llmguard's sentences, from `llmguard:` on, without what the provider said
    status: int | None = None  # the SDK error's HTTP status (None for the deadline's timeout)
    provider_said: str | None = None  # the provider's message, for errors llmguard stopped retrying

    @property
    def refused(self) -> bool:
        """True when llmguard refused to send the call; False when it stopped retrying a failed one."""
        return self.kind not in RETRY_NOTES

    def parts(self) -> tuple[str, str, str | None]:
        """(the limit, how much: what it says about it, the one thing to change), read from the message."""
        text = self.message.removeprefix(REFUSAL_PREFIX).strip()
        found = _SENTENCE_END.search(text)
        head, rest = (text[: found.start()], text[found.end() :]) if found else (text.rstrip("."), "")
        limit = _LIMIT.get(self.kind, self.kind.replace("_", " "))
        budget = _BUDGET.match(head) if self.kind == "budget" else None
        if budget is not None:
            limit, head = budget["limit"], budget["amount"]
        change = rest.strip().rstrip(".").removeprefix("To continue, ")
        if budget is not None:  # its first remedy raises that limit; the others hold for every budget
            change = _BUDGET_ALTERNATIVES.sub("", change)
        if len(change) > 1 and change[1].islower():
            change = change[0].lower() + change[1:]
        return limit, head, change or _DEFAULT_CHANGE.get(self.kind)


def refusal_of(error: BaseException) -> Refusal | None:
    """llmguard's refusal or retry note in an SDK error (openai's or anthropic's), None for any other error."""
    status = getattr(error, "status_code", None)
    if not isinstance(status, int):
        status = getattr(error, "code", None)  # google-genai's errors
    status = status if isinstance(status, int) else None
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    kind = headers.get(REFUSAL_HEADER) if headers is not None and hasattr(headers, "get") else None
    body_type, message = _body_fields(_body_fields_of(getattr(error, "body", None)))
    if message is None and response is not None:  # clients that keep only the response (httpx, mistralai)
        body_type, message = _body_fields(_json_in(getattr(response, "text", "") or ""))
    if message is None:  # clients that fold the body into their text (LiteLLM)
        body_type, message = _body_fields(_json_in(str(error)))
    if message is None:
        message = _from_prefix(str(error))
    if kind is None and body_type is not None and body_type.startswith(REFUSAL_TYPE_PREFIX):
        kind = body_type.removeprefix(REFUSAL_TYPE_PREFIX)
    if kind is None and message is not None and message.startswith(REFUSAL_PREFIX):
        kind = next((name for name, note in RETRY_NOTES.items() if note in message.split(PROVIDER_SAID)[0]), None)
    if kind is None and message is not None and message.startswith(REFUSAL_PREFIX):
        kind = _kind_in_words(message)  # a client that dropped the header and the error's type
    cause = error.__cause__
    if kind is None and isinstance(cause, TimeoutError) and str(cause).startswith(REFUSAL_PREFIX):
        kind, message = "deadline", str(cause)
    if kind is None or message is None:
        return None
    own, said, provider = message.partition(PROVIDER_SAID)
    return Refusal(str(kind), own if said else message, status, provider if said else None)


def _body_fields(body: Any) -> tuple[str | None, str | None]:
    """The error's `type` and `message`: openai's body is the error object, anthropic's wraps it."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return None, None
    kind, message = body.get("type"), body.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)


# llmguard's own refusal sentences, for a client that kept neither the header nor the error type
_KIND_WORDS = (("budget", " would be exceeded ("), ("rate_limit", " is at its rate limit"))


def _kind_in_words(message: str) -> str | None:
    return next((kind for kind, words in _KIND_WORDS if words in message), None)


def _json_in(text: str) -> Any:
    """The JSON object a text carries from its first `{` (an error body quoted in a message), or None."""
    at = text.find("{")
    if at < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, at)
    except ValueError:
        return None
    return value


def _body_fields_of(body: Any) -> Any:
    return _json_in(body) if isinstance(body, str) else body


def _from_prefix(text: str) -> str | None:
    at = text.find(REFUSAL_PREFIX)
    return text[at:] if at >= 0 else None


__all__ = ["ConfigError", "StepTimeout", "REFUSAL_PREFIX", "REFUSAL_HEADER", "Refusal", "refusal_of"]
