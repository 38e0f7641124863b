"""LG201: an OpenAI/Anthropic client constructed without `timeout=` (the SDK default is 600 s)."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint.config import LintConfig
from llmguard.lint.context import Client, FileContext
from llmguard.lint.edits import AddKeyword, number_source
from llmguard.lint.findings import Report
from llmguard.lint.prefilter import may_construct_client, may_import_sdk
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.treefilter import TreeFacts
from llmguard.lint.values import has_star_kwargs, keyword


class ClientWithoutTimeout(Rule):
    code = "LG201"
    name = "client-without-timeout"
    summary = "An OpenAI/Anthropic client is constructed without `timeout=` (the SDK default is 600 s)."
    fixable = True
    skips_tests = True
    literals = ("openai", "anthropic")  # a client's class resolves only through an import of its SDK
    what = """
Flags `OpenAI()`, `AsyncOpenAI()`, `AzureOpenAI()`, `Anthropic()`, `AsyncAnthropic()`,
`AnthropicBedrock()`, `AnthropicVertex()` (and their async variants) constructed without
`timeout=`, unless every call made through the client in the same file passes `timeout=` itself
(directly or through `with_options(timeout=...)`). A client given an `http_client=` that sets a
timeout is not flagged. `**options` built from a dict in view counts by its keys; one whose
contents cannot be seen gives a low-confidence finding, and the `**kwargs` of the enclosing
function (a factory that forwards its caller's options) none. Test files (`tests/`, `test/`,
`test_*.py`, `*_test.py`, `conftest.py`) are skipped unless `include-tests = true`: a test
client talks to a stub or a local server.
"""
    why = """
Both SDKs wait up to 600 seconds (10 minutes) for a response by default, and retry after that. A
stalled request holds a worker, a notebook cell or a user for ten minutes or more before anything
reports a problem.
"""
    example = """
client = OpenAI()
"""
    use_instead = """
client = OpenAI(timeout=60)  # or httpx.Timeout(60, connect=5)
"""
    VALID = (
        "from openai import OpenAI\nclient = OpenAI(timeout=30)\n",
        """
import anthropic
client = anthropic.Anthropic()
def ask(text):
    return client.with_options(timeout=20).messages.create(
        model="claude-3-5-haiku-latest", max_tokens=100, messages=[{"role": "user", "content": text}])
""",
        """
import httpx
from openai import AsyncOpenAI
client = AsyncOpenAI(http_client=httpx.AsyncClient(timeout=30))
""",
        """
from openai import OpenAI
client = OpenAI()
def ask(msgs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=50, timeout=15)
""",
    )
    INVALID = (
        Invalid(
            "from openai import OpenAI\nclient = OpenAI()\n",
            fixed="from openai import OpenAI\nclient = OpenAI(timeout=60)\n",
        ),
        Invalid(
            "from anthropic import AsyncAnthropic as AA\n\nclass Bot:\n    def __init__(self, key):\n"
            "        self.llm = AA(\n            api_key=key,\n            max_retries=2,\n        )\n",
            fixed="from anthropic import AsyncAnthropic as AA\n\nclass Bot:\n    def __init__(self, key):\n"
            "        self.llm = AA(\n            api_key=key,\n            max_retries=2,\n            timeout=60,\n        )\n",
        ),
        Invalid("""
import openai
client = openai.AzureOpenAI(api_version="2024-06-01")
def ask(msgs):
    client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=50, timeout=10)
    return client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=50)
"""),
    )

    def may_match(self, present: frozenset[str] | set[str], text: str, config: LintConfig) -> bool:
        return super().may_match(present, text, config) and may_construct_client(text) and may_import_sdk(text)

    def may_match_tree(self, facts: TreeFacts) -> bool:
        return facts.constructs_client

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if ctx.config.skips_test_rules(ctx.path) or not ctx.clients:
            return
        ctx.llm_calls  # noqa: B018 - links calls to the clients they go through
        for client in ctx.clients:
            call = client.node
            given = ctx.passes(call, client.scope, "timeout")
            if given is True or self._http_client_times_out(call):
                continue
            reached = [bounded for _, bounded in client.reached]
            if reached and all(bounded is True for bounded in reached):
                continue
            note = ctx.star_note(call, client.scope)
            if not note and reached and all(bounded is not False for bounded in reached):
                note = next(ctx.star_note(c.node, c.scope) for c, bounded in client.reached if bounded is None)
            if note:  # a **mapping may set it: say so, and never --fix a guess
                yield Report(call, self._message(client) + note, confidence="low")
                continue
            seconds = number_source(ctx.config.fix_timeout_s)
            yield Report(
                call, self._message(client), fix=f"add timeout={seconds}", edit=AddKeyword(call, "timeout", seconds)
            )

    def _message(self, client: Client) -> str:
        name = "OpenAI" if client.kind.family == "openai" else "Anthropic"
        return f"{name} client without timeout={SDK_WAIT}"

    def _http_client_times_out(self, call: cst.Call) -> bool:
        arg = keyword(call, "http_client")
        if arg is None:
            return False
        value = arg.value
        if isinstance(value, cst.Call):
            return keyword(value, "timeout") is not None or has_star_kwargs(value)
        return True  # built elsewhere: we cannot see its timeout, so do not guess


SDK_WAIT = " waits up to 600 s per attempt (the SDK default); pass timeout= (seconds or httpx.Timeout)"


def message_under_guard(message: str, timeout_s: float) -> str:
    """This rule's message as lint-on-run shows it inside a running guard, which replaces the SDK's
    600 s default with its `timeout_s` (the CLI's message, for code that may run without it, stays)."""
    return message.replace(
        SDK_WAIT,
        f": the running guard caps each attempt at `timeout_s` = {timeout_s:g} s (not the SDK's 600 s); "
        "pass `timeout=` to choose your own",
    )
