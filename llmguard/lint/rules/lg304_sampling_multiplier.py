"""LG304: `n=` / `best_of=` above 1 (or not a literal): every call pays for that many answers."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_none, keyword, number

# Calls where `n` / `best_of` mean "generate this many completions" (OpenAI wire format).
_N_ENDPOINTS = {"chat.completions", "completions"}
_BEST_OF_ENDPOINTS = {"completions"}
_BOUNDING_CALLS = {"min"}  # min(n, 4): bounded by its literal


class SamplingMultiplier(Rule):
    code = "LG304"
    skips_tests = True
    name = "sampling-multiplier"
    summary = "`n=` or `best_of=` above 1 (or a variable) multiplies the output tokens and cost of every call."
    also = ("n=", "n =", "best_of")
    what = """
Flags `n=` above 1 on OpenAI chat/completions calls, `litellm.completion()` and LangChain
`ChatOpenAI`, and `best_of=` above 1 on legacy completions, when the value is a literal above 1
or an expression whose value is not visible (a variable or parameter). A literal 1, `None`, or
`min(x, <literal>)` with a literal of 1 is not flagged. Test files (tests/, test_*.py) are
skipped unless `include-tests = true`: they set `n` on purpose, to test it.
"""
    why = """
`n` asks for n separate answers in one request: output tokens, and with them cost and latency,
grow n times, and `max_tokens` bounds each answer, not their sum. `best_of` generates (and
bills) that many completions server-side and returns only the best. A variable fed from config,
a notebook slider or a request parameter can silently turn one call into dozens.
"""
    example = """
client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=300, n=samples)
"""
    use_instead = """
client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=300, n=2)  # an explicit small literal
# or bound it where it comes in: n=min(samples, 3)
"""
    VALID = (
        """
from openai import OpenAI
client = OpenAI(timeout=30)
client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=50, n=1)
client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=50, n=None)
""",
        """
import anthropic
client = anthropic.Anthropic(timeout=30)
def ask(n):
    return client.messages.create(model="claude-3-5-haiku-latest", max_tokens=50, messages=[])
""",
        """
import numpy as np
n = 5
x = np.random.default_rng(0).normal(size=n)
""",
    )
    INVALID = (
        Invalid("""
from openai import OpenAI
client = OpenAI(timeout=30)
def ideas(msgs, samples):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=200, n=samples)
"""),
        Invalid(
            """
import openai
client = openai.OpenAI(timeout=30)
client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", max_tokens=20, n=3, best_of=10)
""",
            count=2,
        ),
        Invalid("import litellm\nlitellm.completion(model='gpt-4o-mini', messages=[], max_tokens=9, timeout=9, n=4)\n"),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if ctx.config.skips_test_rules(ctx.path):
            return  # test doubles and fixtures (include-tests = true runs it)
        for call in ctx.llm_calls:
            if not _openai_shaped(call):
                continue
            for name in ("n", "best_of"):
                if name == "best_of" and call.endpoint not in _BEST_OF_ENDPOINTS:
                    continue
                arg = keyword(call.node, name)
                if arg is None:
                    continue
                message = _problem(ctx, call, name, arg.value)
                if message is not None:
                    yield Report(arg, message, anchor=call.node, confidence=call.confidence)


def _openai_shaped(call: LLMCall) -> bool:
    """OpenAI's chat/completions (not Anthropic's legacy completions), LiteLLM, LangChain's ChatOpenAI."""
    if call.endpoint in _N_ENDPOINTS:
        return call.family == "openai"
    return call.endpoint == "wrapper" and call.family in ("openai", "litellm")


def _problem(ctx: FileContext, call: LLMCall, name: str, expr: cst.BaseExpression) -> str | None:
    value = ctx.follow(expr, call.scope)
    if is_none(value):
        return None
    bound = _bound(ctx, value)
    if bound is not None:
        if bound <= 1:
            return None
        if name == "best_of":
            return (
                f"best_of={bound:g} generates and bills {bound:g} completions per call to return the best one: "
                f"output cost is {bound:g}x a single completion's; use a smaller literal or leave it out"
            )
        return (
            f"n={bound:g} asks for {bound:g} answers per call: output tokens and cost are {bound:g}x a single "
            "answer's (max_tokens bounds each one); use n=1 unless every answer is needed"
        )
    code = ctx.module.code_for_node(expr).strip()
    code = code if len(code) <= 30 else code[:27] + "..."
    return (
        f"{name}={code} is not a visible literal: each call's output tokens and cost scale with it; "
        f"use an explicit small literal or bound it (min({code}, 3))"
    )


def _bound(ctx: FileContext, expr: cst.BaseExpression) -> float | None:
    """The literal value, or the smallest literal of `min(...)`; None when not visible."""
    value = number(expr, ctx.qualify)
    if value is not None:
        return value
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in _BOUNDING_CALLS:
        literals = [number(a.value, ctx.qualify) for a in expr.args]
        known = [v for v in literals if v is not None]
        return min(known) if known else None
    return None
