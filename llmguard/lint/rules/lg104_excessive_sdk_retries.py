"""LG104: SDK `max_retries` set above the threshold, to None or to infinity."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_infinite, is_none, keyword, number


class ExcessiveSdkRetries(Rule):
    code = "LG104"
    name = "excessive-sdk-retries"
    summary = "An SDK client's `max_retries` is above `max-sdk-retries`, None or infinite."
    also = ("max_retries",)
    what = """
Flags `max_retries=` on an OpenAI/Anthropic client constructor, on `with_options()`/`copy()`, and
on LangChain's `ChatOpenAI`/`ChatAnthropic`, when it is `None`, infinite (`float("inf")`,
`math.inf`, `sys.maxsize`) or a literal above `max-sdk-retries` (default 5).
"""
    why = """
The SDKs retry 408/409/429/5xx with exponential backoff (default 2 retries). A large count
multiplies latency and load during an incident: 20 retries can keep one request alive for minutes,
and retries layered on your own retry loop multiply each other.
"""
    example = """
client = OpenAI(timeout=30, max_retries=50)
"""
    use_instead = """
client = OpenAI(timeout=30, max_retries=3)
"""
    VALID = (
        "from openai import OpenAI\nclient = OpenAI(timeout=30, max_retries=3)\n",
        "import anthropic\nc = anthropic.Anthropic(timeout=30).with_options(max_retries=0)\n",
        "class Job:\n    max_retries = 100\n",
    )
    INVALID = (
        Invalid("from openai import OpenAI\nclient = OpenAI(timeout=30, max_retries=50)\n"),
        Invalid(
            "import math, anthropic\nc = anthropic.Anthropic(timeout=30)\nd = c.with_options(max_retries=math.inf)\n"
        ),
        Invalid(
            "from langchain_openai import ChatOpenAI\nllm = ChatOpenAI(model='gpt-4o', max_tokens=100, "
            "timeout=30, max_retries=None)\n"
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        limit = ctx.config.max_sdk_retries
        for call in self._configured(ctx):
            arg = keyword(call, "max_retries")
            if arg is None:
                continue
            value = arg.value
            if is_none(value) or is_infinite(value, ctx.qualify):
                yield Report(
                    arg,
                    f"max_retries is unbounded: the SDK retries a failing call forever; use at most {limit}",
                    anchor=call,
                )
                continue
            n = number(value, ctx.qualify)
            if n is not None and n > limit:
                yield Report(
                    arg,
                    f"max_retries={n:g} is above max-sdk-retries={limit}: retries multiply "
                    "latency and load during an incident",
                    anchor=call,
                )

    def _configured(self, ctx: FileContext) -> Iterator[cst.Call]:
        """Client constructors, their with_options()/copy() calls, and LangChain chat models."""
        for call, scope in ctx.index.calls:
            qualified = ctx.qualify(call.func)
            if qualified in sdk.CLIENTS or (qualified in sdk.WRAPPERS and sdk.WRAPPERS[qualified].is_constructor):
                yield call
            elif isinstance(call.func, cst.Attribute) and call.func.attr.value in ("with_options", "copy"):
                if isinstance(ctx.resolve_clients(call.func.value, scope), list | str):
                    yield call
