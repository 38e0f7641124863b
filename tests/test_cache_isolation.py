"""Answers are shared only by requests to the same URL: a path-routed gateway, an Azure deployment
or a proxied account that shares a host with another must not be served its answers."""

from __future__ import annotations

import openai

import llmguard
from tests.conftest import FAKE_OPENAI_KEY, rows

MSG = [{"role": "user", "content": "Name a colour."}]


def _azure(sim, deployment: str) -> openai.AzureOpenAI:
    # a test client of the local simulator: pytest-timeout bounds a hang
    return openai.AzureOpenAI(
        azure_endpoint=sim.base_url,
        api_key=FAKE_OPENAI_KEY,
        api_version="2024-10-21",  # noqa: LG201
        azure_deployment=deployment,
        max_retries=0,
    )


def test_two_deployments_on_one_host_do_not_share_cached_answers(fresh_sim, home):
    guard = llmguard.install(home=str(home))
    for deployment in ("team-a", "team-b"):
        _azure(fresh_sim, deployment).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=10, temperature=0
        )
    first, second = rows(guard)
    assert first["cache_hit"] == second["cache_hit"] == 0
    assert fresh_sim.stats["requests"] == 2
    _azure(fresh_sim, "team-a").chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10, temperature=0)
    assert rows(guard)[-1]["cache_hit"] == 1  # the same URL still replays


def test_an_untagged_call_never_hits_an_answer_stored_under_a_tenant(fresh_sim, home):
    from tests.conftest import openai_client

    guard = llmguard.install(home=str(home))
    client = openai_client(fresh_sim)
    with llmguard.tag(tenant="acme"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10, temperature=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10, temperature=0)
    assert [r["cache_hit"] for r in rows(guard)] == [0, 0]
