"""Write changed cell sources back into a notebook's own JSON text, changing nothing else.

Notebooks come indented by 1 (Jupyter), 2 (Colab), 4 or not at all, with `\\u` escapes or raw
UTF-8, with or without a final newline, keys in any order. Re-serialising the whole file turns a
one-line fix into a diff of every line, so only the `source` value of each changed cell is
replaced, written in the layout of the value it replaces, and every source line that did not
change keeps its exact JSON text. If the JSON cannot be walked that way (or the result would not
load back to the expected notebook), the whole file is re-serialised in its detected style.
"""

from __future__ import annotations

import difflib
import json
import json.decoder
import re
from collections.abc import Callable
from functools import partial
from typing import Any

# json.decoder.scanstring (the string scanner json.loads uses) exists at run time but not in typeshed
scanstring: Callable[[str, int], tuple[str, int]] = vars(json.decoder)["scanstring"]
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# a \uXXXX escape above ASCII, not preceded by an escaped backslash
_NON_ASCII_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u(?!00[0-7])[0-9a-fA-F]{4}")


def write(text: str, changed: dict[int, str]) -> str:
    """The notebook `text` with `cells[i].source` set to `changed[i]` (0-based cell indexes)."""
    expected = json.loads(text)
    for index, source in changed.items():
        cell = expected["cells"][index]
        cell["source"] = source_lines(source) if isinstance(cell.get("source"), list) else source
    spliced = _splice(text, changed)
    if spliced is not None:
        try:
            if json.loads(spliced) == expected:
                return spliced
        except ValueError:
            pass
    return dump_like(text, expected)


def source_lines(source: str) -> list[str]:
    """A cell's text as Jupyter stores it: lines that keep their `\\n`, split on `\\n` only."""
    parts = source.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def ensure_ascii_style(text: str) -> bool:
    """Does this JSON escape non-ASCII characters (`\\u00e9`) rather than write them as they are?"""
    if any(ord(ch) > 127 for ch in text):
        return False
    return _NON_ASCII_ESCAPE.search(text) is not None


def dump_like(text: str, data: Any) -> str:
    """`data` serialised the way `text` was: its indent, escaping and trailing whitespace."""
    match = re.match(r"\s*[\[{]\r?\n([ \t]*)", text)
    indent: int | str | None = None
    if match:
        indent = match.group(1) if "\t" in match.group(1) else len(match.group(1))
    out = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii_style(text))
    if "\r\n" in text:
        out = out.replace("\n", "\r\n")
    return out + text[len(text.rstrip()) :]


# -- finding each cell's "source" value in the text ---------------------------------------------------
def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]  # the pattern matches the empty string


def _value_end(text: str, i: int) -> int:
    return _DECODER.raw_decode(text, i)[1]


def _object(text: str, i: int, member: Callable[[str, int], int]) -> int:
    """Walk the object at `i`, calling member(key, value start) -> value end; returns the object's end."""
    if text[i] != "{":
        raise ValueError("not an object")
    i = _skip(text, i + 1)
    if text[i] == "}":
        return i + 1
    while True:
        if text[i] != '"':
            raise ValueError("not a key")
        key, i = scanstring(text, i + 1)
        i = _skip(text, i)
        if text[i] != ":":
            raise ValueError("no colon")
        i = _skip(text, _skip(text, i + 1))
        i = _skip(text, member(key, i))
        if text[i] == "}":
            return i + 1
        if text[i] != ",":
            raise ValueError("no comma")
        i = _skip(text, i + 1)


def _member(text: str, name: str, at: int, spans: dict[str, tuple[int, int]]) -> int:
    end = _value_end(text, at)
    spans[name] = (at, end)  # a repeated key: the last one wins, as in json.loads
    return end


def source_spans(text: str) -> list[tuple[int, int] | None] | None:
    """(start, end) of each cell's `source` value in `text`, by cell index; None if not walkable."""
    found: list[list[tuple[int, int] | None]] = []

    def top(key: str, start: int) -> int:
        if key != "cells":
            return _value_end(text, start)
        spans: list[tuple[int, int] | None] = []
        if text[start] != "[":
            raise ValueError("cells is not a list")
        i = _skip(text, start + 1)
        if text[i] == "]":
            found.append(spans)
            return i + 1
        while True:
            span: dict[str, tuple[int, int]] = {}
            i = _skip(text, _object(text, i, partial(_member, text, spans=span)))
            spans.append(span.get("source"))
            if text[i] == "]":
                found.append(spans)
                return i + 1
            if text[i] != ",":
                raise ValueError("no comma between cells")
            i = _skip(text, i + 1)

    try:
        end = _object(text, _skip(text, 0), top)
    except (ValueError, IndexError):
        return None
    if _skip(text, end) != len(text) or not found:
        return None
    return found[-1]


# -- writing one value in the layout of the one it replaces -----------------------------------------
def _splice(text: str, changed: dict[int, str]) -> str | None:
    spans = source_spans(text)
    if spans is None:
        return None
    ensure_ascii = ensure_ascii_style(text)
    out = text
    for index in sorted(changed, reverse=True):
        span = spans[index] if index < len(spans) else None
        if span is None:
            return None
        start, end = span
        value = _encode_like(text[start:end], changed[index], ensure_ascii)
        if value is None:
            return None
        out = out[:start] + value + out[end:]
    return out


def _encode_like(original: str, source: str, ensure_ascii: bool) -> str | None:
    if original.startswith('"'):
        return json.dumps(source, ensure_ascii=ensure_ascii)
    items = _string_items(original)
    if items is None:
        return None
    raws, values, gaps = items
    lines = source_lines(source)
    if not lines:
        return "[]"
    encoded: list[str | None] = [None] * len(lines)
    matcher = difflib.SequenceMatcher(None, values, lines, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            encoded[block.b + k] = raws[block.a + k]
    texts = [
        raw if raw is not None else json.dumps(line, ensure_ascii=ensure_ascii)
        for raw, line in zip(encoded, lines, strict=True)
    ]
    if not raws:  # was `[]`: one line, as json.dumps would write it
        return "[" + ", ".join(texts) + "]"
    opening, closing = gaps[0], gaps[-1]
    if len(gaps) > 2:
        separator = gaps[1]
    else:
        separator = "," + opening if "\n" in opening else ", "
    return "[" + opening + separator.join(texts) + closing + "]"


def _string_items(original: str) -> tuple[list[str], list[str], list[str]] | None:
    """(raw JSON of each string, its value, the whitespace gaps around and between them) of a list."""
    raws: list[str] = []
    values: list[str] = []
    gaps: list[str] = []
    i = 1
    while True:
        j = _skip(original, i)
        if original[j] == "]":
            gaps.append(original[i:j])
            return raws, values, gaps
        if raws:
            if original[j] != ",":
                return None
            j = _skip(original, j + 1)
        if original[j] != '"':
            return None
        gaps.append(original[i:j])
        value, end = scanstring(original, j + 1)
        raws.append(original[j:end])
        values.append(value)
        i = end
