"""LG102: tenacity retries without `stop=` (forever)."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint.context import FileContext
from llmguard.lint.edits import AddKeyword, reference
from llmguard.lint.findings import Report
from llmguard.lint.retries import retry_uses
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import has_star_kwargs, keyword


class TenacityWithoutStop(Rule):
    code = "LG102"
    name = "tenacity-without-stop"
    summary = "tenacity `@retry`/`Retrying` without `stop=` retries forever."
    literals = ("tenacity",)
    fixable = True
    what = """
Flags tenacity's `@retry`, `@retry(...)`, `retry(...)`, `Retrying(...)` and `AsyncRetrying(...)`
without a `stop=` argument, or with `stop=stop_never`. Calls that pass `**kwargs` are not flagged.
"""
    why = """
tenacity's default stop condition is `stop_never`: a persistent failure (bad key, bad request,
an outage) is retried forever, and each attempt against an LLM API may be billed.
"""
    example = """
from tenacity import retry, wait_random_exponential

@retry(wait=wait_random_exponential(min=1, max=60))
def ask(prompt): ...
"""
    use_instead = """
from tenacity import retry, stop_after_attempt, wait_random_exponential

@retry(wait=wait_random_exponential(min=1, max=60), stop=stop_after_attempt(5))
def ask(prompt): ...
"""
    VALID = (
        """
from tenacity import retry, stop_after_attempt, wait_exponential
@retry(stop=stop_after_attempt(3), wait=wait_exponential())
def ask(): ...
""",
        """
import tenacity
for attempt in tenacity.Retrying(stop=tenacity.stop_after_delay(30), wait=tenacity.wait_fixed(1)):
    with attempt:
        pass
""",
        """
from tenacity import retry
options = {"stop": None}
@retry(**options)
def ask(): ...
""",
        """
def retry(f):
    return f
@retry
def ask(): ...
""",
    )
    INVALID = (
        Invalid(
            "from tenacity import retry, wait_exponential\n\n@retry(wait=wait_exponential())\ndef ask():\n    ...\n",
            fixed="from tenacity import retry, wait_exponential, stop_after_attempt\n\n"
            "@retry(wait=wait_exponential(), stop=stop_after_attempt(5))\ndef ask():\n    ...\n",
        ),
        Invalid(
            "import tenacity as t\n\n@t.retry\ndef ask():\n    ...\n",
            fixed="import tenacity as t\n\n@t.retry(stop=t.stop_after_attempt(5))\ndef ask():\n    ...\n",
        ),
        Invalid(
            "from tenacity import AsyncRetrying, stop_never, wait_fixed\n"
            "retrying = AsyncRetrying(\n    wait=wait_fixed(1),\n    stop=stop_never,\n)\n",
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for use in retry_uses(ctx):
            if use.library != "tenacity":
                continue
            call = use.call
            if call is not None and has_star_kwargs(call):
                continue
            stop = keyword(call, "stop") if call is not None else None
            if stop is not None:
                if ctx.qualify(stop.value) == "tenacity.stop_never":
                    yield Report(
                        stop,
                        "tenacity stop=stop_never retries forever; use stop=stop_after_attempt(N) "
                        "or stop_after_delay(seconds)",
                        anchor=call,
                    )
                continue
            target = call if call is not None else use.node
            message = "tenacity retry without stop= retries forever (the default is stop_never); add stop="
            yield Report(target, message, fix=self._fix_text(ctx), edit=self._edit(ctx, target))

    def _fix_text(self, ctx: FileContext) -> str:
        return f"add stop=stop_after_attempt({ctx.config.fix_max_attempts})"

    def _edit(self, ctx: FileContext, target: cst.Call | cst.Decorator) -> AddKeyword | None:
        ref = reference(ctx, "tenacity.stop_after_attempt")
        if ref is None:
            return None
        name, import_into = ref
        return AddKeyword(
            target,
            "stop",
            f"{name}({ctx.config.fix_max_attempts})",
            import_into,
            "stop_after_attempt" if import_into is not None else None,
        )
