"""LG204: a raw HTTP call to a known LLM API endpoint without a timeout."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.http import raw_http_calls
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import has_star_kwargs, keyword

_DEFAULTS = {
    "requests": "requests has no default timeout and waits forever",
    "httpx": "httpx's implicit 5 s default is rarely what an LLM call needs; set it explicitly",
    "aiohttp": "aiohttp's default is 5 minutes in total",
}


class RawHttpWithoutTimeout(Rule):
    code = "LG204"
    name = "raw-http-without-timeout"
    summary = "A raw `requests`/`httpx`/`aiohttp` call to an LLM API endpoint has no timeout."
    literals = sdk.LLM_HOSTS
    what = """
Flags `requests`, `httpx` and `aiohttp` calls (module functions, or methods of a `Session`,
`Client` or `ClientSession` created in the file) whose URL is a known LLM API host
(api.openai.com, api.anthropic.com, *.openai.azure.com, generativelanguage.googleapis.com, ...)
and that pass no `timeout=`, neither on the call nor on the session.
"""
    why = """
`requests` has no default timeout at all: a stalled LLM request blocks forever. aiohttp waits five
minutes, and httpx's five-second default is implicit and usually replaced in a hurry. LLM
latency varies by orders of magnitude, so the bound should be chosen, not inherited.
"""
    example = """
resp = requests.post("https://api.openai.com/v1/chat/completions", json=body, headers=headers)
"""
    use_instead = """
resp = requests.post("https://api.openai.com/v1/chat/completions", json=body, headers=headers, timeout=(5, 60))
"""
    VALID = (
        "import requests\nr = requests.post('https://api.openai.com/v1/chat/completions', json={}, timeout=30)\n",
        "import requests\nr = requests.get('https://example.com/data.json')\n",
        """
import httpx
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
with httpx.Client(timeout=30) as http:
    http.post(ANTHROPIC_URL, json={})
""",
    )
    INVALID = (
        Invalid("import requests\nr = requests.post('https://api.openai.com/v1/chat/completions', json={})\n"),
        Invalid("""
import aiohttp
URL = "https://api.anthropic.com/v1/messages"
async def ask(body):
    async with aiohttp.ClientSession() as session:
        async with session.post(URL, json=body) as resp:
            return await resp.json()
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for raw in raw_http_calls(ctx):
            call = raw.node
            if keyword(call, "timeout") is not None or has_star_kwargs(call):
                continue
            if raw.session is not None and (keyword(raw.session, "timeout") is not None or has_star_kwargs(raw.session)):
                continue
            yield Report(call, f"HTTP call to an LLM API without timeout=: {_DEFAULTS[raw.library]}")
