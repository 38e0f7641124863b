"""LG103: backoff retries without `max_tries` or `max_time` (forever)."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext
from llmguard.lint.edits import AddKeyword
from llmguard.lint.findings import Report
from llmguard.lint.retries import retry_uses
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import has_star_kwargs, is_none, keyword


class BackoffWithoutLimit(Rule):
    code = "LG103"
    name = "backoff-without-limit"
    summary = "`backoff.on_exception`/`on_predicate` without `max_tries` or `max_time` retries forever."
    literals = ("backoff",)
    fixable = True
    what = """
Flags `backoff.on_exception(...)` and `backoff.on_predicate(...)` that pass neither `max_tries`
nor `max_time` (or pass both as `None`). Calls that pass `**kwargs` are not flagged.
"""
    why = """
backoff's defaults are no attempt limit and no time limit: a persistent failure is retried forever,
with every attempt against an LLM API possibly billed.
"""
    example = """
@backoff.on_exception(backoff.expo, openai.RateLimitError)
def ask(prompt): ...
"""
    use_instead = """
@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=5, max_time=120)
def ask(prompt): ...
"""
    VALID = (
        """
import backoff, openai
@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=6)
def ask(): ...
""",
        """
import backoff
@backoff.on_predicate(backoff.constant, lambda r: r is None, interval=1, max_time=60)
def poll(): ...
""",
    )
    INVALID = (
        Invalid(
            "import backoff, openai\n\n@backoff.on_exception(backoff.expo, openai.RateLimitError)\ndef ask():\n    ...\n",
            fixed="import backoff, openai\n\n@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=5)\n"
            "def ask():\n    ...\n",
        ),
        Invalid(
            "from backoff import on_predicate, fibo\n\n@on_predicate(fibo, max_tries=None, max_time=None)\n"
            "def poll():\n    ...\n",
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for use in retry_uses(ctx):
            call = use.call
            if use.library != "backoff" or call is None or has_star_kwargs(call):
                continue
            limits = [keyword(call, "max_tries"), keyword(call, "max_time")]
            present = [arg for arg in limits if arg is not None]
            if present and not all(is_none(arg.value) for arg in present):
                continue
            n = ctx.config.fix_max_attempts
            edit = AddKeyword(call, "max_tries", str(n)) if limits[0] is None else None
            yield Report(
                call,
                f"{use.qualified} without max_tries or max_time retries forever; add max_tries=",
                fix=f"add max_tries={n}",
                edit=edit,
            )
