"""Keep secrets out of everything llmguard writes.

Provider error messages can echo part of a key ("Incorrect API key provided: sk-abc***wxyz"), so
every free-text field passes through `scrub` before it reaches the ledger, a log or a widget.
"""

from __future__ import annotations

import re

_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|sk_[A-Za-z0-9_\-*]{8,}|(?:Bearer|bearer)\s+\S+)")
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization", "x-goog-api-key")


def secrets_of(headers: object) -> list[str]:
    """Secret header values of a request, to scrub verbatim wherever they appear."""
    found: list[str] = []
    get = getattr(headers, "get", None)
    if get is None:
        return found
    for name in SECRET_HEADERS:
        value = get(name)
        if value:
            found.append(value)
            if value.lower().startswith("bearer "):
                found.append(value[7:])
    return [s for s in found if len(s) >= 4]


def scrub(text: str | None, secrets: list[str] | tuple[str, ...] = ()) -> str | None:
    if not text:
        return text
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)
