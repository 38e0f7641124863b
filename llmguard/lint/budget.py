"""Token counts for prompt text, counted the way the guard counts (llmguard.policies.tokens)."""

from __future__ import annotations

from llmguard.lint.prefilter import could_exceed
from llmguard.policies.tokens import TokenCount, count_text


def over_budget(text: str, model: str, limit: int) -> TokenCount | None:
    """The token count of `text` when it is above `limit`, else None."""
    if not could_exceed(text, limit):
        return None
    count = count_text(text, model)
    return count if count.tokens > limit else None


def describe(count: TokenCount) -> str:
    return f"~{count.tokens:,}" if count.approximate else f"{count.tokens:,}"
