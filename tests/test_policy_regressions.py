"""Regressions in the guard's money policies: quota windows, reconfiguring, unpriced models."""

from __future__ import annotations

import threading
import time

import openai
import pytest

import llmguard
from llmguard.ledger.sqlite import CallEvent
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Summarise the plan."}]


@pytest.fixture
def dst_timezone(monkeypatch):
    """A local timezone that is on daylight saving time today (Sydney's summer is Berlin's winter)."""
    for zone in ("Australia/Sydney", "Europe/Berlin", "America/New_York"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        if time.localtime().tm_isdst > 0:
            break
    else:
        pytest.skip("no DST timezone available")
    yield zone
    monkeypatch.delenv("TZ")
    time.tzset()


def test_a_per_day_quota_starts_at_utc_midnight_under_daylight_saving(fresh_sim, home, dst_timezone):
    guard = llmguard.install(home=str(home), quotas={"tenant:acme": {"usd_per_day": 0.01}})
    midnight = time.time() // 86400 * 86400
    # yesterday, 30 minutes before UTC midnight, acme spent the whole of a day's quota
    guard.ledger.record(
        CallEvent(ts=midnight - 1800, provider="openai", model="gpt-4o-mini", tenant="acme", cost_usd=0.01)
    )
    with llmguard.tag(tenant="acme"):
        answer = openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=20)
    assert answer.choices[0].message.content  # today's quota is untouched
    assert rows(guard)[-1]["status"] == "ok"


def test_reconfiguring_keeps_per_run_quota_spend_and_the_spend_of_calls_in_flight(fresh_sim, home):
    guard = llmguard.install(home=str(home), budget_usd=1.0, quotas={"feature:batch": {"tokens_per_run": 10_000}})
    client = openai_client(fresh_sim)
    with llmguard.tag(feature="batch"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=20)
    fresh_sim.configure(latency_ms=600)
    done = threading.Event()

    def slow_call() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=20)
        done.set()

    worker = threading.Thread(target=slow_call)
    worker.start()
    while not guard.budget.snapshot()["session budget"]["reserved"]:
        time.sleep(0.005)  # the slow call holds its worst case
    guard.configure(budget_usd=2.0)  # what %llmguard budget 2 does
    worker.join(10)
    fresh_sim.configure(latency_ms=0)
    assert done.is_set()
    first, second = rows(guard)
    snapshot = guard.budget.snapshot()
    session = snapshot["session budget"]
    assert session["limit"] == 2.0
    assert session["reserved"] == 0.0
    assert session["spent"] == pytest.approx(first["cost_usd"] + second["cost_usd"], rel=1e-12)
    quota = snapshot["feature:batch tokens_per_run"]
    assert quota["spent"] == first["input_tokens"] + first["output_tokens"]


def test_an_unpriced_model_is_refused_under_a_usd_budget(fresh_sim, home):
    guard = llmguard.install(home=str(home), budget_usd=0.001)
    with pytest.raises(openai.RateLimitError) as refused:
        openai_client(fresh_sim).chat.completions.create(model="llama3.1:8b", messages=MSG, max_tokens=2000)
    message = str(refused.value)
    assert "no known price" in message and "prices=" in message and "unpriced='allow'" in message
    assert fresh_sim.stats["requests"] == 0
    [row] = rows(guard)
    assert row["status"] == "refused" and row["error_type"] == "budget"


def test_unpriced_allow_admits_and_counts_the_call_at_zero(fresh_sim, home):
    guard = llmguard.install(home=str(home), budget_usd=0.001, unpriced="allow")
    for _ in range(3):
        openai_client(fresh_sim).chat.completions.create(model="llama3.1:8b", messages=MSG, max_tokens=2000)
    assert [r["status"] for r in rows(guard)] == ["ok", "ok", "ok"]
    assert guard.budget.snapshot()["session budget"]["spent"] == 0.0
    assert guard.metrics.snapshot()["unpriced_calls"] == 3
