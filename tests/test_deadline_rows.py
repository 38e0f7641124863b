"""A deadline refusal is one row, whichever SDK made the call.

The Anthropic SDK retries an APITimeoutError by itself (the OpenAI SDK, told `x-should-retry`,
does not): each of its retries came back into the guard as a new call and wrote a row of its own,
3 rows for one user call. The retry of a refused body now fails fast, as for a transport failure.

openai 3.60 began reading `request.headers` in every APIError (to strip keys), so a refusal built
with no request fell back to a bare TimeoutError: the refusal now carries the unsent request.
"""

from __future__ import annotations

import pytest

import llmguard
from tests.conftest import anthropic_client, openai_client, rows

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_deadline_refusal_writes_one_row(fresh_sim, home, sdk):
    model = "gpt-4o-mini" if sdk == "openai" else "claude-3-5-haiku-latest"
    guard = llmguard.install(home=str(home), limits={model: {"rpm": 1}}, cache="off")
    try:
        if sdk == "openai":
            client = openai_client(fresh_sim, timeout=30)
            call = lambda: client.chat.completions.create(model=model, messages=MSG, max_tokens=5)  # noqa: E731
            import openai as module
        else:
            client = anthropic_client(fresh_sim, timeout=30)
            call = lambda: client.messages.create(model=model, messages=MSG, max_tokens=5)  # noqa: E731
            import anthropic as module
        call()  # takes the one request of this minute
        with pytest.raises(module.APITimeoutError) as refused, llmguard.tag(deadline=0.3):
            call()
        # the error names the request it was for, as the SDK's own would, and carries no key
        path = "/v1/chat/completions" if sdk == "openai" else "/v1/messages"
        assert str(refused.value.request.url) == fresh_sim.base_url + path
        assert "sk-" not in repr(dict(refused.value.request.headers))
        guard.ledger.flush()
        found = [(r["status"], r["error_type"]) for r in rows(guard)]
        assert found == [("ok", None), ("refused", "deadline")]
    finally:
        llmguard.uninstall()
