"""Every client a notebook reaches for, unchanged, through one guard: metered exactly against the
simulator's books, one row per call however its own retries work, limited, budgeted, cached when
deterministic, and streamed. The README's "what is guarded" table is this file's parametrisation
(`tests/clients.py`)."""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

import llmguard
from tests.clients import ANTHROPIC_KEY, CASES, GOOGLE_KEY, MISTRAL_KEY, OPENAI_KEY, Case, table
from tests.conftest import rows

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Say hello to the guard."


def _books(sim, model: str) -> tuple[int, int, Decimal]:
    book = sim.stats["models"][model]
    return book["input_tokens"], book["output_tokens"], Decimal(book["cost_decimal"])


def _settled(guard) -> list[dict]:
    guard.ledger.flush()
    return rows(guard)


def _exact(row: dict, sim, case: Case) -> None:
    inputs, outputs, cost = _books(sim, case.model)
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == (case.model, inputs, outputs)
    assert Decimal(repr(row["cost_usd"])) == cost and cost > 0
    assert not row["tokens_approximate"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_metered(case, fresh_sim, home):
    guard = llmguard.install(home=str(home))
    case.call(fresh_sim, PROMPT, None, False)
    [row] = _settled(guard)
    assert row["status"] == "ok" and not row["stream"]
    _exact(row, fresh_sim, case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_row_per_call(case, fresh_sim, home):
    """A 500 the guard retries is one call, one row: the client's own retry loop never sees it."""
    guard = llmguard.install(home=str(home), backoff_base_s=0.01)
    fresh_sim.configure(faults=["500"])
    case.call(fresh_sim, PROMPT, None, False)
    [row] = _settled(guard)
    assert (row["status"], row["retry_count"], fresh_sim.stats["requests"]) == ("ok", 1, 2)
    _exact(row, fresh_sim, case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_limited(case, fresh_sim, home):
    guard = llmguard.install(home=str(home), limits={case.model: {"rpm": 1}}, max_wait_s=0, on_limit="refuse")
    case.call(fresh_sim, PROMPT, None, False)
    with pytest.raises(Exception) as refused:
        case.call(fresh_sim, PROMPT + " Again.", None, False)
    assert f"llmguard: {case.model} is at its rate limit" in _said(refused.value)
    assert fresh_sim.stats["requests"] == 1
    assert [r["status"] for r in _settled(guard)] == ["ok", "refused"]


def _said(error: BaseException) -> str:
    """What the error tells its catcher: its text, and for raw HTTP clients the response body."""
    response = getattr(error, "response", None)
    return str(error) + (getattr(response, "text", "") if response is not None else "")


def _is_the_refusal_type(error: BaseException, dotted: str) -> bool:
    """`error` is an instance of the class importable as `dotted` (LangChain's errors subclass the SDK's)."""
    module, _, name = dotted.rpartition(".")
    return isinstance(error, getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_budgeted(case, fresh_sim, home):
    guard = llmguard.install(home=str(home), budget_usd=0.000001)
    with pytest.raises(Exception) as refused:
        case.call(fresh_sim, PROMPT, None, False)
    assert "llmguard: session budget would be exceeded" in _said(refused.value)
    assert fresh_sim.stats["requests"] == 0
    assert _is_the_refusal_type(refused.value, case.refusal), type(refused.value).__mro__
    refusal = llmguard.errors.refusal_of(refused.value)  # what the notebook's refusal box reads
    assert refusal is not None and refusal.kind == "budget" and refusal.refused, refusal
    [row] = _settled(guard)
    assert row["status"] == "refused"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cached(case, fresh_sim, home):
    guard = llmguard.install(home=str(home))
    case.call(fresh_sim, PROMPT, 0, False)
    case.call(fresh_sim, PROMPT, 0, False)
    assert fresh_sim.stats["requests"] == 1
    first, second = _settled(guard)
    assert (first["cache_hit"], second["cache_hit"]) == (0, 1)
    assert second["saved_usd"] == first["cost_usd"]


@pytest.mark.parametrize("case", [c for c in CASES if "streamed" not in c.unsupported], ids=lambda c: c.id)
def test_streamed(case, fresh_sim, home):
    guard = llmguard.install(home=str(home))
    case.call(fresh_sim, PROMPT, None, True)
    [row] = _settled(guard)
    assert row["status"] == "ok" and row["stream"]
    _exact(row, fresh_sim, case)


def test_no_client_key_reaches_the_home(fresh_sim, home):
    llmguard.install(home=str(home))
    for case in CASES:
        case.call(fresh_sim, PROMPT, 0, False)
    llmguard.uninstall()
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for key in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, MISTRAL_KEY):
                assert key.encode() not in data, path


def test_the_readme_table_is_the_tests_parametrisation():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- guarded-table -->\n(.*?)\n<!-- /guarded-table -->", readme, re.DOTALL)
    assert found is not None, "README.md lost its <!-- guarded-table --> block"
    assert found.group(1) == table(), "regenerate it: python -m tests.clients"


def test_google_genai_is_kept_off_aiohttp_only_while_a_guard_is_attached(home):
    """With aiohttp installed google-genai sends async calls through it, a seam the guard does not
    wrap: while attached its choice answers False (so httpx2 carries them); uninstall restores it."""
    pytest.importorskip("aiohttp")
    from google.genai import _api_client

    original = _api_client.BaseApiClient.__dict__["_use_aiohttp"]
    client = _api_client.BaseApiClient(api_key=GOOGLE_KEY)
    assert client._use_aiohttp() is True
    llmguard.install(home=str(home))
    assert client._use_aiohttp() is False
    llmguard.uninstall()
    assert _api_client.BaseApiClient.__dict__["_use_aiohttp"] is original
    assert client._use_aiohttp() is True


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", b"not json at all"),
        ("/v1/chat/completions", b'{"prompt": "no model named"}'),
        ("/v1/messages", b'["a", "list"]'),
        ("/reports/completions", b"x=1&y=2"),
    ],
)
def test_a_post_that_only_looks_like_an_llm_path_passes_through(path, body, fresh_sim, home):
    """The OpenAI and Anthropic paths are common words: without a JSON body naming a model the
    request is not an LLM call, and it is sent as it is, with no row."""
    import httpx

    guard = llmguard.install(home=str(home))
    httpx.post(fresh_sim.base_url + path, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert _settled(guard) == []
    assert fresh_sim.stats["requests"] in (0, 1)  # the simulator's own 400/404, whatever it answers
