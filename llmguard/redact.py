"""Keep secrets out of everything llmguard writes.

Provider error messages can echo part of a key ("Incorrect API key provided: sk-abc***wxyz"), so
every free-text field passes through `scrub` before it reaches the ledger, a log or a widget. Keys
also travel in URLs (Google's `?key=`): `without_secret_params` drops them from a URL llmguard keeps
(the cache key), and `scrub` removes them from any text that quotes such a URL.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_KEY_LIKE = re.compile(
    r"\b(sk-[A-Za-z0-9_\-*]{4,}|sk_[A-Za-z0-9_\-*]{8,}|AIza[0-9A-Za-z_\-]{20,}|(?:Bearer|bearer)\s+\S+)"
    r"|(?:(?<=[?&]key=)|(?<=[?&]api_key=)|(?<=[?&]api-key=)|(?<=[?&]access_token=))[^&\s\"'#]+"
)
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization", "x-goog-api-key")
_SECRET_PARAMS = frozenset(("key", "api_key", "api-key", "access_token"))
# the user:password part of a URL (a Redis store's `redis://:secret@host`): the host stays readable
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^/@\s]*@", re.IGNORECASE)


def secrets_of(headers: object) -> list[str]:
    """Secret header values of a request (its headers, or the request itself, whose URL's credential
    parameters count too), to scrub verbatim wherever they appear."""
    found: list[str] = []
    url = getattr(headers, "url", None)
    if url is not None:  # a request: `?key=` values, then its headers
        query = getattr(url, "query", b"")
        text = query.decode("latin-1") if isinstance(query, bytes) else str(query)
        for item in text.split("&") if text else ():
            name, _, value = item.partition("=")
            if name.lower() in _SECRET_PARAMS and value:
                found.append(unquote(value))
                found.append(value)
        headers = getattr(headers, "headers", None)
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
    return _URL_USERINFO.sub(r"\1***@", _KEY_LIKE.sub("[redacted]", text))


def url_without_password(url: str) -> str:
    """`redis://user:secret@host:6379/0` -> `redis://***@host:6379/0`: what may be shown of a URL."""
    return _URL_USERINFO.sub(r"\1***@", url)


def without_secret_params(target: str) -> str:
    """A path or URL without its credential query parameters (`?key=...&alt=sse` -> `?alt=sse`);
    the rest of the query stays, in order. A target without a query is returned as it is."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    kept = [item for item in query.split("&") if item.partition("=")[0].lower() not in _SECRET_PARAMS]
    return f"{path}?{'&'.join(kept)}" if kept else path
