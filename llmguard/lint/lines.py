"""Source lines the way Python counts them.

`str.splitlines()` also breaks at form feed, vertical tab, U+001C-U+001E, U+0085, U+2028 and U+2029,
which Python's tokenizer (and libcst) treat as ordinary characters, even inside a string literal.
Splitting on those would move every later line number and cut string literals in two.
"""

from __future__ import annotations

import re

_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines without their line break, like `str.splitlines()` but only at `\\r\\n`, `\\r` and `\\n`."""
    lines = _BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
