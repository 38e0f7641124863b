"""LG302: an explicit `max_tokens=None` (no bound)."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_infinite, is_none, keyword


class MaxTokensNone(Rule):
    code = "LG302"
    name = "max-tokens-none"
    summary = "The max tokens bound of an LLM call is explicitly None."
    also = ("None", "inf", "maxsize")
    what = """
Flags `max_tokens=None` (or `max_completion_tokens`, `max_output_tokens`, an infinite value) on
the same calls as LG301.
"""
    why = """
`None` asks for no bound: the model may generate until its context window is full, and the cost
of the call has no ceiling. It often comes from a config default that was never filled in.
"""
    example = """
client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=None)
"""
    use_instead = """
client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=settings.max_tokens or 1024)
"""
    VALID = ("from openai import OpenAI\nOpenAI(timeout=9).chat.completions.create(model='m', messages=[], max_tokens=5)\n",)
    INVALID = (
        Invalid("from openai import OpenAI\nOpenAI(timeout=9).chat.completions.create(model='m', messages=[], "
                "max_completion_tokens=None)\n"),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for call in ctx.llm_calls:
            arg = keyword(call.node, *call.max_tokens_args) if call.generates else None
            if arg is not None and (is_none(arg.value) or is_infinite(arg.value, ctx.qualify)):
                yield Report(arg, f"{arg.keyword.value}=None leaves the output unbounded; set a number",
                             anchor=call.node, confidence=call.confidence)
