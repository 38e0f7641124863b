"""LG303: a literal max-tokens bound above `max-output-tokens`."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_infinite, keyword, keyword_name, number


class MaxTokensTooHigh(Rule):
    code = "LG303"
    name = "max-tokens-too-high"
    summary = "A literal max tokens bound is above `max-output-tokens` (default 4096)."
    what = """
Flags a literal `max_tokens`/`max_completion_tokens`/`max_output_tokens` (a number or simple
arithmetic, also through a module constant assigned once) above `max-output-tokens` on the same
calls as LG301.
"""
    why = """
The bound is the worst case you pay for and wait for on every call. A value copied from the
model's maximum (16k, 64k, 128k) makes a runaway answer cost that much; most calls need a small
fraction of it.
"""
    example = """
client.messages.create(model="claude-sonnet-4-5", max_tokens=64000, messages=msgs)
"""
    use_instead = """
client.messages.create(model="claude-sonnet-4-5", max_tokens=2048, messages=msgs)
"""
    VALID = (
        "import anthropic\nanthropic.Anthropic(timeout=9).messages.create(model='m', max_tokens=2048, messages=[])\n",
    )
    INVALID = (
        Invalid(
            "import anthropic\nanthropic.Anthropic(timeout=9).messages.create(model='m', max_tokens=64_000, messages=[])\n"
        ),
        Invalid(
            "from openai import OpenAI\nOpenAI(timeout=9).responses.create(model='m', input='x', "
            "max_output_tokens=32 * 1024)\n"
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        limit = ctx.config.max_output_tokens
        for call in ctx.llm_calls:
            arg = keyword(call.node, *call.max_tokens_args) if call.generates else None
            if arg is None:
                continue
            value = ctx.constant(arg.value, call.scope)
            if is_infinite(value, ctx.qualify):
                continue
            n = number(value, ctx.qualify)
            if n is not None and n > limit:
                yield Report(
                    arg,
                    f"{keyword_name(arg)}={n:g} is above max-output-tokens={limit}: every call may "
                    "cost and take that much",
                    anchor=call.node,
                    confidence=call.confidence,
                )
