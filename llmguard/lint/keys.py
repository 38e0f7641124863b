"""API-key shapes (OpenAI, Anthropic, Google): find them in text, tell placeholders apart, mask them.

Plain `re` and no libcst, so the prefilter, the rule (LG501) and the output formats (which must
never print a key a finding points at) can all use it. A key is never returned or printed whole:
callers get the span and the masked form (`sk-ant-…4d2b`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

# Literals a text must contain before the pattern below is worth running.
KEY_LITERALS = ("sk-", "AIza")

_BODY = r"[A-Za-z0-9_\-]"
KEY_PATTERN = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    rf"(?P<anthropic>sk-ant-[a-z]+[0-9]*-){_BODY}{{40,}}"  # sk-ant-api03-…, sk-ant-admin01-…
    rf"|(?P<openai>sk-(?:proj-|svcacct-|admin-)?){_BODY}{{32,}}"  # sk-…48, sk-proj-…156
    rf"|(?P<google>AIza)[A-Za-z0-9_\-]{{35}}"  # AIza + 35
    r")(?![A-Za-z0-9_\-])"
)
_CANDIDATES = (re.compile(rf"sk-{_BODY}{{32,}}"), re.compile(rf"AIza{_BODY}{{35}}"))
_PLACEHOLDER_WORDS = (
    "xxxx",
    "your",
    "example",
    "placeholder",
    "dummy",
    "fake",
    "test",
    "sample",
    "here",
    "redacted",
    "replace",
    "insert",
    "changeme",
    "demo",
    "abcdef",
    "123456",
    "0000",
    "key-",
)
PROVIDERS = {"anthropic": "Anthropic", "openai": "OpenAI", "google": "Google"}


@dataclass(frozen=True)
class KeyMatch:
    start: int
    end: int
    provider: str  # "openai" | "anthropic" | "google"
    masked: str  # e.g. "sk-proj-…a9Qz": the prefix and the last four characters only


def find_keys(text: str) -> Iterator[KeyMatch]:
    """Realistic API keys in `text` (placeholders such as `sk-...`, `sk-xxxx`, `sk-test-…` are skipped).

    Candidates come from patterns that start with a literal (the regex engine then skips ahead with a
    fast scan); the full pattern, with its boundaries, runs only on them.
    """
    if not any(literal in text for literal in KEY_LITERALS):
        return
    starts = sorted(m.start() for candidate in _CANDIDATES for m in candidate.finditer(text))
    for start in starts:
        match = KEY_PATTERN.match(text, start)
        if match is None:
            continue
        provider = match.lastgroup or "openai"
        prefix = match.group(provider)
        body = match.group(0)[len(prefix) :]
        if _looks_real(body):
            shown = "sk-ant-" if provider == "anthropic" else prefix  # not "sk-ant-api03-": the kind is enough
            yield KeyMatch(match.start(), match.end(), provider, mask(shown, body))


def has_key(text: str) -> bool:
    return next(find_keys(text), None) is not None


def mask(prefix: str, body: str) -> str:
    return f"{prefix}…{body[-4:]}"


def redact(text: str) -> str:
    """`text` with every realistic key replaced by its masked form (for printing source lines)."""
    if not any(literal in text for literal in KEY_LITERALS):
        return text
    out, last = [], 0
    for key in find_keys(text):
        out.append(text[last : key.start])
        out.append(key.masked)
        last = key.end
    out.append(text[last:])
    return "".join(out)


def _looks_real(body: str) -> bool:
    """Random-looking: upper and lower case letters and digits, high entropy, no placeholder words."""
    if not (any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)):
        return False
    lowered = body.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return False
    return _entropy(body) >= 3.5


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())
