"""LG204: a raw HTTP call to a known LLM API endpoint without a timeout."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.http import raw_http_calls
from llmguard.lint.rules.base import Invalid, Rule

_DEFAULTS = {
    "requests": "requests has no default timeout and waits forever",
    "httpx": "httpx's implicit 5 s default is rarely what an LLM call needs; set it explicitly",
    "aiohttp": "aiohttp's default is 5 minutes in total",
}


class RawHttpWithoutTimeout(Rule):
    code = "LG204"
    name = "raw-http-without-timeout"
    summary = "A raw `requests`/`httpx`/`aiohttp` call to an LLM API endpoint has no timeout."
    literals = sdk.LLM_URL_LITERALS
    what = """
Flags `requests`, `httpx` and `aiohttp` calls (module functions, or methods of a `Session`,
`Client` or `ClientSession` created in the file) to an LLM API that pass no `timeout=`, neither
on the call nor on the session. The URL (a literal, an f-string, a `+` concatenation, `.format()`
or `urljoin`, directly or through a variable) names an LLM API by its host (api.openai.com,
api.anthropic.com, *.openai.azure.com, generativelanguage.googleapis.com, ...) or by an endpoint
path that only LLM servers have, whatever the base URL: `/chat/completions`, `/v1/messages`,
`/v1/responses`, `:generateContent`, `:streamGenerateContent`, and at the end of the URL
`/completions`, `/responses`, `/embeddings`, Ollama's `/api/generate`, `/api/chat`, `/api/embed`.
A `**options` mapping whose contents cannot be seen gives a low-confidence finding.
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
        "import requests\ndef report(base, uid):\n    return requests.get(f'{base}/users/{uid}/completions-report')\n",
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
import requests
class LocalLLM:
    def generate(self, body):
        return requests.post(f"{self.base_url}/chat/completions", json=body, headers=self.headers)
"""),
        Invalid("import requests\ndef ask(host, body):\n    return requests.post(host + '/api/generate', json=body)\n"),
        Invalid("import httpx2\nr = httpx2.post('https://api.openai.com/v1/chat/completions', json={})\n"),
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
            given = ctx.passes(call, raw.scope, "timeout")
            if given is True:
                continue
            note = ctx.star_note(call, raw.scope) if given is None else ""
            if raw.session is not None:
                scope = ctx.scope_of(raw.session)
                on_session = ctx.passes(raw.session, scope, "timeout")
                if on_session is True:
                    continue
                if on_session is None:
                    note = note or ctx.star_note(raw.session, scope)
            message = f"HTTP call to an LLM API without timeout=: {_DEFAULTS[raw.library]}"
            yield Report(call, message + note, confidence="low" if note else "high")
