"""LG302: an explicit `max_tokens=None` (no bound)."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_infinite, is_none, keyword, keyword_name


class MaxTokensNone(Rule):
    code = "LG302"
    name = "max-tokens-none"
    summary = "The max tokens bound of an LLM call is explicitly None."
    also = ("None", "inf", "maxsize")
    what = """
Flags `max_tokens=None` (or `max_completion_tokens`, `max_output_tokens`, an infinite value) on
the same calls as LG301, also when the value is a module constant assigned once (`MAX_TOKENS =
None`) or a key of a `**params` dict in view. A parameter default (`def ask(max_tokens=None)`)
is the caller's choice and is not flagged.
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
    VALID = (
        "from openai import OpenAI\nOpenAI(timeout=9).chat.completions.create(model='m', messages=[], max_tokens=5)\n",
        """
from openai import OpenAI
client = OpenAI(timeout=9)
def ask(msgs, max_tokens=None):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=max_tokens or 512)
""",
    )
    INVALID = (
        Invalid(
            "from openai import OpenAI\nOpenAI(timeout=9).chat.completions.create(model='m', messages=[], "
            "max_completion_tokens=None)\n"
        ),
        Invalid("""
from openai import OpenAI
MAX_TOKENS = None  # "set later"
client = OpenAI(timeout=9)
client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=MAX_TOKENS)
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for call in ctx.llm_calls:
            if not call.generates:
                continue
            arg = keyword(call.node, *call.max_tokens_args)
            node: cst.CSTNode
            if arg is not None:
                name, node, value = keyword_name(arg), arg, ctx.constant(arg.value, call.scope)
            else:
                found = ctx.star_value(call.node, call.scope, *call.max_tokens_args)
                if found is None:
                    continue
                name, value = found
                node = value
                value = ctx.constant(value, call.scope)
            if is_none(value) or is_infinite(value, ctx.qualify):
                yield Report(
                    node,
                    f"{name}=None leaves the output unbounded; set a number",
                    anchor=call.node,
                    confidence=call.confidence,
                )
