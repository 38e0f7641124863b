"""Suppression comments: `# noqa: LG201`, `# llmguard: ignore[LG201]`, and `# llmguard: ignore-file`.

A comment on the finding's first line, or on the first line of the call/decorator that contains
it (so one comment covers a multi-line call), suppresses it. Without codes (`# noqa`,
`# llmguard: ignore`) it suppresses every code on that line.
"""

from __future__ import annotations

import re

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_IGNORE = re.compile(r"#\s*llmguard:\s*ignore(?:\[(?P<codes>[^\]]*)\])?(?![-\w])", re.IGNORECASE)
_IGNORE_FILE = re.compile(r"^\s*#\s*llmguard:\s*ignore-file\b", re.IGNORECASE | re.MULTILINE)
ALL = "*"


def file_ignored(text: str) -> bool:
    return "ignore-file" in text and _IGNORE_FILE.search(text) is not None


def codes_on_line(line: str) -> frozenset[str]:
    """The codes a line's comment suppresses; ALL for a bare `# noqa`/`# llmguard: ignore`."""
    if "#" not in line:
        return frozenset()
    found: set[str] = set()
    for pattern in (_NOQA, _IGNORE):
        for match in pattern.finditer(line):
            codes = match.group("codes")
            if codes is None or not codes.strip():
                found.add(ALL)
            else:
                found.update(c.upper() for c in re.split(r"[\s,]+", codes.strip()) if c)
    return frozenset(found)


class Suppressions:
    """Looks up suppression comments by 1-based line, parsing each line at most once."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._cache: dict[int, frozenset[str]] = {}

    def suppressed(self, code: str, *lines: int) -> bool:
        for number in lines:
            codes = self._cache.get(number)
            if codes is None:
                text = self.lines[number - 1] if 0 < number <= len(self.lines) else ""
                codes = self._cache[number] = codes_on_line(text)
            if code in codes or ALL in codes:
                return True
        return False
