"""Token usage between the two shapes. OpenAI's prompt_tokens include cache reads and writes;
Anthropic's input_tokens exclude both (they are counted apart), so the sums move across."""

from __future__ import annotations

from typing import Any


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage_to_openai(usage: Any) -> dict[str, Any] | None:
    """Anthropic usage as OpenAI chat usage: prompt tokens include cache reads and writes."""
    if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
        return None
    read = _count(usage, "cache_read_input_tokens")
    write = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + read + write
    completion = _count(usage, "output_tokens")
    details = usage.get("output_tokens_details")
    thinking = _count(details, "thinking_tokens") if isinstance(details, dict) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }


def openai_usage_to_anthropic(usage: Any) -> dict[str, Any] | None:
    """OpenAI chat usage as Anthropic usage: input tokens exclude cache reads (and writes)."""
    if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
        return None
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read, write = _count(details, "cached_tokens"), _count(details, "cache_write_tokens")
    return {
        "input_tokens": max(0, _count(usage, "prompt_tokens") - read - write),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": _count(usage, "completion_tokens"),
    }
