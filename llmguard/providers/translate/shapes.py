"""Shape checks on caller-supplied JSON: each returns the value typed or raises a
`TranslationError` naming the offending field, so a malformed request fails with the field's path
instead of a KeyError deep inside a translator."""

from __future__ import annotations

import json
from typing import Any

from llmguard.providers.translate.common import Log, TranslationError


def kind_of(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return type(value).__name__


def malformed(where: str, expected: str, value: Any) -> TranslationError:
    return TranslationError(
        f"{where}: expected {expected}, got {kind_of(value)}",
        "fix the request: the provider would refuse it as well",
        where,
    )


def expect_dict(value: Any, where: str, expected: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(where, expected, value)
    return value


def expect_list(value: Any, where: str, expected: str = "a list") -> list[Any]:
    if not isinstance(value, list):
        raise malformed(where, expected, value)
    return value


def expect_str(value: Any, where: str, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise malformed(where, expected, value)
    return value


def expect_positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise malformed(where, "a positive integer", value)
    return value


def expect_number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise malformed(where, "a number", value)
    return value


def expect_stops(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [expect_str(s, f"{where}[{i}]") for i, s in enumerate(expect_list(value, where, "a string or a list"))]


def drop_extra(item: dict[str, Any], keep: tuple[str, ...], where: str, log: Log, note: str | None = None) -> None:
    for key, value in item.items():
        if key not in keep and value is not None:
            log.drop(f"{where}.{key}", note)


def is_blank(text: str) -> bool:
    return not text.strip()
