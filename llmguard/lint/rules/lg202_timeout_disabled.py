"""LG202: `timeout=None` or an infinite timeout on an LLM client or call."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.timeouts import timeout_arguments, timeout_seconds


class TimeoutDisabled(Rule):
    code = "LG202"
    name = "timeout-disabled"
    summary = "`timeout=None` (or infinite) on an LLM client or call waits forever."
    literals = sdk.SDK_LITERALS + sdk.LLM_HOSTS
    also = ("timeout",)
    what = """
Flags `timeout=None`, `timeout=float("inf")`, `timeout=math.inf` and `httpx.Timeout(None)` (also
through a module constant assigned once, `TIMEOUT = None`) on an OpenAI/Anthropic client,
`with_options()`, an LLM call, a LangChain chat model (`timeout`/`request_timeout`) or a raw HTTP
call to an LLM API (see LG204).
"""
    why = """
With no timeout a request that stalls (a dropped connection, a stuck stream, an overloaded
provider) never returns: the worker, the cell or the user waits forever and no retry can help.
"""
    example = """
client = OpenAI(timeout=None)
"""
    use_instead = """
client = OpenAI(timeout=60)
"""
    VALID = (
        "from openai import OpenAI\nclient = OpenAI(timeout=60)\n",
        "import requests\nrequests.get('https://example.com', timeout=None)\n",
        "import requests\ndef get(base):\n    return requests.get(f'{base}/orders', timeout=None)\n",
    )
    INVALID = (
        Invalid("from openai import OpenAI\nclient = OpenAI(timeout=None)\n"),
        Invalid("import httpx, anthropic\nclient = anthropic.Anthropic(timeout=httpx.Timeout(None))\n"),
        Invalid("""
import openai
client = openai.OpenAI(timeout=30)
def ask(msgs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=9, timeout=float("inf"))
"""),
        Invalid("""
import httpx
async def ask(base_url, body):
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base_url}/chat/completions", json=body, timeout=None)
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for call, arg in timeout_arguments(ctx):
            seconds = timeout_seconds(ctx, arg.value, ctx.scope_of(call))
            if seconds is not None and seconds == float("inf"):
                yield Report(
                    arg,
                    "timeout is disabled (None or infinite): a stalled request never returns; set a timeout in seconds",
                    anchor=call,
                )
