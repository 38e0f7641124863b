"""LG203: a literal timeout above `max-timeout-s` on an LLM client or call."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.timeouts import timeout_arguments, timeout_seconds


class TimeoutTooLong(Rule):
    code = "LG203"
    name = "timeout-too-long"
    summary = "A literal timeout on an LLM client or call is above `max-timeout-s` (default 120 s)."
    literals = sdk.SDK_LITERALS + sdk.LLM_HOSTS
    also = ("timeout",)
    what = """
Flags a literal timeout (a number, simple arithmetic such as `10 * 60`, or `httpx.Timeout(N)`,
also through a module constant assigned once) above `max-timeout-s` on the same clients and calls
as LG202.
"""
    why = """
A 600-second timeout is the SDK default this linter exists to replace: a stalled call holds its
caller for ten minutes before a retry even starts. Long generations should stream, with a timeout
on each read, instead of waiting minutes for one response.
"""
    example = """
client = Anthropic(timeout=600)
"""
    use_instead = """
client = Anthropic(timeout=httpx.Timeout(60, connect=5))
"""
    VALID = (
        "from anthropic import Anthropic\nclient = Anthropic(timeout=60)\n",
        "import httpx, openai\nclient = openai.OpenAI(timeout=httpx.Timeout(90.0, connect=5.0))\n",
    )
    INVALID = (
        Invalid("from anthropic import Anthropic\nclient = Anthropic(timeout=600)\n"),
        Invalid("import httpx, openai\nclient = openai.OpenAI(timeout=httpx.Timeout(10 * 60, connect=5))\n"),
        Invalid("import requests\nr = requests.post('https://api.openai.com/v1/responses', json={}, timeout=900)\n"),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        limit = ctx.config.max_timeout_s
        for call, arg in timeout_arguments(ctx):
            seconds = timeout_seconds(ctx, arg.value, ctx.scope_of(call))
            if seconds is not None and limit < seconds < float("inf"):
                yield Report(
                    arg,
                    f"timeout of {seconds:g} s is above max-timeout-s={limit:g}: a stalled call "
                    "holds its caller that long before any retry",
                    anchor=call,
                )
