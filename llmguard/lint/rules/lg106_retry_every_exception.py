"""LG106: retrying every exception around an LLM call, auth and bad-request errors included."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.retries import classifies, function_calls_llm, is_broad, retry_loops, retry_uses
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import keyword


class RetryEveryException(Rule):
    code = "LG106"
    name = "retry-on-every-exception"
    summary = "Retrying every exception around an LLM call retries auth and bad-request errors too."
    literals = sdk.SDK_LITERALS
    what = """
Flags retries around an LLM call that catch everything: a retry loop whose retrying branch is a
bare `except:` or `except Exception` that does not look at the error (`isinstance`, a status
code); tenacity's `retry=retry_if_exception_type(Exception)` (or with no argument); and
`backoff.on_exception(..., Exception)`. tenacity without `retry=` also retries every exception, but
is so common that it is not flagged.
"""
    why = """
An invalid API key, a malformed request or a context-length error fails the same way on every
attempt. Retrying them wastes time and quota and buries the real error under retry noise. Retry
only what can succeed later: rate limits, timeouts, connection errors and 5xx responses.
"""
    example = """
@retry(stop=stop_after_attempt(5), wait=wait_random_exponential(), retry=retry_if_exception_type(Exception))
def ask(prompt):
    return client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=200)
"""
    use_instead = """
@retry(stop=stop_after_attempt(5), wait=wait_random_exponential(),
       retry=retry_if_exception_type((openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)))
def ask(prompt):
    return client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=200)
"""
    VALID = (
        """
import time, openai
client = openai.OpenAI(timeout=20)
def ask(msgs):
    for attempt in range(3):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
        except (openai.RateLimitError, openai.APITimeoutError):
            time.sleep(2 ** attempt)
    raise RuntimeError("gave up")
""",
        """
import time, openai
client = openai.OpenAI(timeout=20)
def ask(msgs):
    for attempt in range(3):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
        except Exception as exc:
            if not isinstance(exc, openai.RateLimitError):
                raise
            time.sleep(2 ** attempt)
""",
    )
    INVALID = (
        Invalid("""
import time, openai
client = openai.OpenAI(timeout=20)
def ask(msgs):
    for attempt in range(3):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
        except Exception:
            time.sleep(2 ** attempt)
"""),
        Invalid("""
import openai
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed
client = openai.OpenAI(timeout=20)
@retry(stop=stop_after_attempt(3), wait=wait_fixed(1), retry=retry_if_exception_type(Exception))
def ask(msgs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
"""),
        Invalid("""
import backoff, anthropic
llm = anthropic.Anthropic(timeout=20)
@backoff.on_exception(backoff.expo, Exception, max_tries=4)
def ask(text):
    return llm.messages.create(model="claude-3-5-haiku-latest", max_tokens=100,
                               messages=[{"role": "user", "content": text}])
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for found in retry_loops(ctx):
            for handler in found.handlers:
                if is_broad(ctx, handler.type) and not classifies(handler):
                    yield Report(
                        handler,
                        "retrying every exception around an LLM call also retries auth and "
                        "bad-request errors; catch the retryable errors (rate limit, timeout, connection)",
                    )
        if not ctx.llm_calls:
            return
        for use in retry_uses(ctx):
            call = use.call
            if call is None or (use.function is not None and not function_calls_llm(ctx, use.function)):
                continue
            broad = self._broad_argument(ctx, use.library, call)
            if broad is not None:
                yield Report(
                    broad,
                    "retrying every exception around an LLM call also retries auth and "
                    "bad-request errors; list the retryable exception types",
                    anchor=call,
                )

    def _broad_argument(self, ctx: FileContext, library: str, call: cst.Call) -> cst.CSTNode | None:
        if library == "tenacity":
            arg = keyword(call, "retry")
            if arg is None or not isinstance(arg.value, cst.Call):
                return None
            inner = arg.value
            if ctx.qualify(inner.func) in sdk.TENACITY_BROAD:
                if not inner.args or is_broad(ctx, inner.args[0].value):
                    return arg
            return None
        arg = keyword(call, "exception")
        if arg is None and len(call.args) > 1 and call.args[1].keyword is None:
            arg = call.args[1]
        if arg is not None and ctx.qualify(call.func) == "backoff.on_exception" and is_broad(ctx, arg.value):
            return arg
        return None
