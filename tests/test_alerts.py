"""Each alert fires on a ledger built to trigger it and stays silent on one built not to; the
attribution numbers add up to the change they explain."""

from __future__ import annotations

import pytest

import llmguard
from llmguard.config import ConfigError, Settings
from llmguard.context import StepEvent
from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting import alerts as alerts_mod
from llmguard.reporting.alerts import alerts
from tests.conftest import openai_client

HOUR = 3600.0
NOW = 1_750_032_000.0  # 2025-06-16 00:00 UTC ...
NOW += 12 * HOUR  # ... at noon, so a day has 12 hours left


def call(ts: float, **fields) -> CallEvent:
    base = dict(
        ts=ts,
        provider="openai",
        endpoint="chat.completions",
        model="gpt-4o-mini",
        requested_model=fields.get("model", "gpt-4o-mini"),
        input_tokens=100,
        output_tokens=20,
        cost_usd=0.001,
        total_ms=1000.0,
        model_ms=900.0,
    )
    base.update(fields)
    return CallEvent(**base)


def step(ts: float, duration_ms: float, calls: int = 1, name: str = "retrieval") -> StepEvent:
    return StepEvent(name=name, duration_ms=duration_ms, ts=ts, calls=calls)


def write(home, events: list[CallEvent], run_id: str = "run-1", steps: list[StepEvent] = ()) -> None:
    ledger = Ledger(home, run_id=run_id)
    for event in events:
        ledger.record(event)
    for event in steps:
        ledger.record_step(event)
    ledger.close()


def spread(start: float, n: int, span: float = HOUR) -> list[float]:
    """n times evenly inside [start, start + span)."""
    return [start + (i + 0.5) * span / n for i in range(n)]


def kinds(found, kind: str):
    return [a for a in found if a.kind == kind]


def run(home, settings: Settings | None = None, **kw):
    return alerts(home / "ledger.sqlite3", settings=settings or Settings(), now=NOW, **kw)


# ---- latency ------------------------------------------------------------------------------------


def test_latency_rise_is_attributed_to_queue_wait_and_the_parts_add_up(home):
    before = [call(t) for t in spread(NOW - 2 * HOUR, 40)]  # 1000 ms: 900 model + 100 other
    now_times = spread(NOW - HOUR, 40)
    current = [call(t) for t in now_times[:36]]
    current += [call(t, queue_ms=1800.0, model_ms=1000.0, total_ms=3000.0) for t in now_times[36:]]
    write(home, before + current)
    (alert,) = kinds(run(home), "latency")
    # p95 = rank 38 of 40: 1000 ms before, 3000 ms now; the tail (>= p95) is all 40 calls before, the 4 slow ones now
    assert (alert.before, alert.after) == (1000.0, 3000.0)
    assert alert.message.startswith("p95 latency rose 200% (1.0 s → 3.0 s, the last 1 h vs the 1 h before)")
    assert "queue wait accounts for 90% of the increase" in alert.message
    parts = alert.attribution["components_ms"]
    assert parts == pytest.approx({"queue": 1800.0, "retry_delay": 0.0, "model": 100.0, "other": 100.0})
    assert sum(parts.values()) == pytest.approx(alert.attribution["change_ms"]) == pytest.approx(2000.0)
    assert sum(alert.attribution["shares"].values()) == pytest.approx(1.0)
    assert "rate-limit capacity" in alert.check_next and alert.severity == "critical"


def test_latency_rise_from_a_user_step_names_the_step(home):
    # one retrieval step around each call, as step() records it: a row of its own per run
    before = [step(t, 100.0) for t in spread(NOW - 2 * HOUR, 40)]
    now_times = spread(NOW - HOUR, 40)
    current = [step(t, 100.0) for t in now_times[:36]] + [step(t, 1600.0) for t in now_times[36:]]
    write(home, [call(t) for t in spread(NOW - 2 * HOUR, 40) + now_times], steps=before + current)
    (alert,) = kinds(run(home), "latency")  # the calls inside did not slow down: the step alone
    assert (alert.before, alert.after) == (100.0, 1600.0)  # p95 of the step's runs, rank 38 of 40
    assert (
        alert.message == "p95 of step `retrieval` rose 1500% (100 ms → 1.6 s, the last 1 h vs the 1 h before, 40 runs)"
    )
    assert alert.metric == "step_p95_latency_ms" and alert.scope["step"] == "retrieval"
    assert alert.attribution["runs"] == {"before": 40, "after": 40}
    assert alert.attribution["calls_per_run"] == {"before": 1.0, "after": 1.0}
    assert "`retrieval`" in alert.check_next and alert.severity == "critical"


def test_a_step_with_more_calls_inside_says_so_and_calls_keep_their_own_latency(home):
    before = [step(t, 1000.0) for t in spread(NOW - 2 * HOUR, 30)]
    current = [step(t, 3000.0, calls=3) for t in spread(NOW - HOUR, 30)]
    write(
        home,
        [call(t) for t in spread(NOW - 2 * HOUR, 30)] + [call(t) for t in spread(NOW - HOUR, 90)],
        steps=before + current,
    )
    (alert,) = kinds(run(home), "latency")  # the calls' p95 is 1000 ms in both windows: no alert of theirs
    assert alert.metric == "step_p95_latency_ms"
    assert alert.message.endswith("; it makes 3.0 calls per run, 1.0 before")
    assert kinds(run(home, feature="chat"), "latency") == []  # filtered to a feature its steps never had
    assert kinds(run(home, model="gpt-4o-mini"), "latency") == []  # a step records no model: cannot belong


@pytest.mark.parametrize("slow_ms", [1000.0, 1100.0])  # unchanged, and a 10% rise (below the 25% threshold)
def test_latency_stays_silent_without_a_real_rise(home, slow_ms):
    before = [call(t) for t in spread(NOW - 2 * HOUR, 40)]
    now_times = spread(NOW - HOUR, 40)
    current = [call(t) for t in now_times[:36]] + [call(t, total_ms=slow_ms) for t in now_times[36:]]
    write(home, before + current)
    assert kinds(run(home), "latency") == []


def test_latency_compares_the_last_run_with_the_run_before(home):
    write(home, [call(t) for t in spread(NOW - 3 * HOUR, 30)], run_id="run-a")
    write(home, [call(t, queue_ms=2000.0, total_ms=3000.0) for t in spread(NOW - HOUR, 30)], run_id="run-b")
    (alert,) = kinds(run(home, last_run=True), "latency")
    assert alert.scope == {"window": "run run-b", "baseline": "run run-a"}
    assert alert.attribution["components_ms"]["queue"] == pytest.approx(2000.0)


# ---- tokens per prompt version ------------------------------------------------------------------


def _versions(home, new_input: float, new_output: float) -> None:
    old = [
        call(t, feature="document_summary", prompt_version="summary-v4", input_tokens=1000, output_tokens=200)
        for t in spread(NOW - 48 * HOUR, 20, 24 * HOUR)
    ]
    new = [
        call(
            t, feature="document_summary", prompt_version="summary-v5", input_tokens=new_input, output_tokens=new_output
        )
        for t in spread(NOW - HOUR, 20)
    ]
    write(home, old + new)


def test_tokens_per_call_rise_after_a_prompt_version(home):
    _versions(home, 1400, 220)
    (alert,) = kinds(run(home), "tokens")
    assert alert.message.startswith(
        "tokens per call for feature `document_summary` rose 35% after prompt_version `summary-v5`"
    )
    assert (alert.before, alert.after) == (1200.0, 1620.0)
    a = alert.attribution
    assert (a["input_tokens_per_call"], a["output_tokens_per_call"]) == (400.0, 20.0)
    assert a["input_tokens_per_call"] + a["output_tokens_per_call"] == alert.after - alert.before
    assert sum(a["shares"].values()) == pytest.approx(1.0)
    assert alert.scope["previous_prompt_version"] == "summary-v4" and "summary-v4" in alert.check_next


def test_tokens_stay_silent_for_a_small_change(home):
    _versions(home, 1050, 200)
    assert kinds(run(home), "tokens") == []


# ---- cost ---------------------------------------------------------------------------------------


def test_cost_per_call_rise_is_split_into_model_mix_and_per_model_changes(home):
    before = [call(t) for t in spread(NOW - 2 * HOUR, 30)]
    times = spread(NOW - HOUR, 30)
    current = [call(t) for t in times[:15]] + [call(t, model="gpt-4o", cost_usd=0.01) for t in times[15:]]
    write(home, before + current)
    (alert,) = kinds(run(home), "cost")
    assert alert.before == pytest.approx(0.001) and alert.after == pytest.approx(0.0055)
    parts = alert.attribution["components_usd"]
    assert parts["model mix"] == pytest.approx(0.0045)
    assert sum(parts.values()) == pytest.approx(alert.after - alert.before)
    assert "traffic shifted toward pricier models" in alert.message and "`gpt-4o` 0% → 50%" in alert.message


def test_cost_stays_silent_when_nothing_changed(home):
    write(home, [call(t) for t in spread(NOW - 2 * HOUR, 60, 2 * HOUR)])
    assert kinds(run(home), "cost") == []


# ---- reliability --------------------------------------------------------------------------------

AFFECTED = {
    "retry": dict(retry_count=1, retry_delay_ms=500.0),
    "fallback": dict(fallback_used=True, requested_model="gpt-4o", decision="fallback"),
    "timeout": dict(status="error", error_type="timeout"),
    "rate_limited": dict(status="error", error_type="rate_limited", http_status=429),
    "error": dict(status="error", error_type="http_503", http_status=503),
    "refusal": dict(status="refused", error_type="budget", decision="reject", cost_usd=0.0),
}


def _reliability(home, kind: str, before_bad: int, now_bad: int) -> None:
    events = []
    for start, bad in ((NOW - 2 * HOUR, before_bad), (NOW - HOUR, now_bad)):
        for i, t in enumerate(spread(start, 50)):
            events.append(call(t, **(AFFECTED[kind] if i < bad else {})))
    write(home, events)


@pytest.mark.parametrize("kind", list(AFFECTED))
def test_reliability_alert_fires_above_the_usual_rate(home, kind):
    _reliability(home, kind, before_bad=1, now_bad=10)
    (alert,) = [a for a in kinds(run(home), "reliability") if a.metric == f"{kind}_rate"]
    assert (alert.before, alert.after) == (pytest.approx(0.02), pytest.approx(0.2))
    assert "20%" in alert.message and "up from 2%" in alert.message
    assert sum(alert.attribution["by_model_share"].values()) == pytest.approx(1.0)
    assert alert.check_next
    if kind == "retry":
        assert alert.message.startswith("retries are hiding provider instability: 20% of calls needed a retry")
        assert alert.attribution["retried_then_ok"] == 10
    if kind == "fallback":
        assert alert.attribution["by_model_share"] == {"gpt-4o": 1.0}  # the model that was asked for


@pytest.mark.parametrize("kind", list(AFFECTED))
@pytest.mark.parametrize("before_bad,now_bad", [(1, 1), (8, 10)])  # low rate; high but as usual
def test_reliability_stays_silent_at_the_usual_rate(home, kind, before_bad, now_bad):
    _reliability(home, kind, before_bad, now_bad)
    assert kinds(run(home), "reliability") == []


def test_retries_through_the_real_pipeline_raise_the_alert(fresh_sim, home):
    llmguard.install(home=str(home), backoff_base_s=0.01, max_attempts=3)
    client = openai_client(fresh_sim)
    fresh_sim.configure(faults=["500", "ok", "503", "ok", "500", "ok"])
    for i in range(10):
        client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": f"question {i}"}]
        )
    llmguard.uninstall()
    found = alerts(home / "ledger.sqlite3", settings=Settings(), alert_thresholds={"min_calls": 5})
    (alert,) = [a for a in found if a.metric == "retry_rate"]
    assert alert.after == pytest.approx(0.3) and alert.before is None
    assert "30% of calls needed a retry" in alert.message and "3 of the 3 then succeeded" in alert.message
    assert alert.attribution["by_model_share"] == {"gpt-4o-mini": 1.0}


# ---- capacity -----------------------------------------------------------------------------------

LIMITED = Settings(limits={"gpt-4o": {"rpm": 100, "tpm": 10_000}}, window_s=60.0)


@pytest.mark.parametrize(
    "unit,calls,tokens,fires",
    [
        ("rpm", 90, 10, True),
        ("rpm", 50, 10, False),
        ("tpm", 10, 900, True),
        ("tpm", 5, 900, False),
    ],
)
def test_rpm_and_tpm_use_above_80_percent_of_the_limit(home, unit, calls, tokens, fires):
    minute = (NOW // 60) * 60 - 600
    write(
        home,
        [
            call(
                t,
                model="gpt-4o",
                feature="batch",
                input_tokens=tokens - 100 if tokens > 100 else tokens,
                output_tokens=100 if tokens > 100 else 0,
            )
            for t in spread(minute, calls, 60)
        ],
    )
    found = [a for a in kinds(run(home, LIMITED), "capacity") if a.metric == f"{unit}_use"]
    if not fires:
        assert found == []
        return
    (alert,) = found
    used, limit = (90, 100) if unit == "rpm" else (9000, 10_000)
    assert (alert.after, alert.before) == (used, limit) and alert.attribution["use"] == pytest.approx(0.9)
    assert f"`gpt-4o` used 90% of its {unit.upper()} limit" in alert.message
    assert alert.attribution["by_feature_share"] == {"batch": 1.0} and alert.attribution["peak_start"] == minute


def _queue(home, second_half_wait_ms: float, calls: int) -> None:
    first = [call(t, queue_ms=1000.0, decision="queue") for t in spread(NOW - 600, 10, 300)]
    second = [call(t, queue_ms=second_half_wait_ms, decision="queue") for t in spread(NOW - 300, calls, 300)]
    write(home, first + second)


def test_queue_growing_faster_than_it_drains(home):
    _queue(home, 20_000.0, 30)
    (alert,) = [a for a in run(home, alert_thresholds={"window_s": 600}) if a.metric == "queue_depth"]
    # time-averaged waiting calls = queue time / half length: 10 s / 300 s, then 600 s / 300 s
    assert alert.before == pytest.approx(10 / 300) and alert.after == pytest.approx(2.0)
    assert "the queue is growing faster than it drains" in alert.message
    assert alert.attribution["mean_wait_ms"] == {"before": 1000.0, "after": 20_000.0}


def test_queue_stays_silent_when_it_drains_as_fast_as_it_fills(home):
    _queue(home, 1000.0, 10)
    assert [a for a in run(home, alert_thresholds={"window_s": 600}) if a.metric == "queue_depth"] == []


@pytest.mark.parametrize("oldest_ms,fires", [(45_000.0, True), (20_000.0, False)])
def test_oldest_job_age_above_the_threshold(home, oldest_ms, fires):
    events = [call(t) for t in spread(NOW - HOUR, 20)]
    events.append(call(NOW - 100, queue_ms=oldest_ms, priority="background", model="gpt-4o"))
    write(home, events)
    found = [a for a in run(home) if a.metric == "oldest_job_age_ms"]
    assert bool(found) is fires
    if fires:
        assert found[0].after == 45_000.0 and "the oldest job waited 45.0 s" in found[0].message
        assert found[0].attribution["by_priority_model"] == {"background · gpt-4o": 1}


# ---- budget -------------------------------------------------------------------------------------


def test_session_budget_projected_to_run_out(home):
    write(home, [call(NOW - 2100 + i * 60, cost_usd=0.02, feature="summary") for i in range(35)])  # $0.70 in 35 min
    (alert,) = kinds(run(home, Settings(budget_usd=1.0)), "budget")
    # $0.30 left at $0.70 / 2100 s -> 900 s
    assert alert.projected_at == pytest.approx(NOW + 900)
    assert "session budget ($1.00) will run out at" in alert.message and "in 15 min" in alert.message
    assert alert.attribution["rate_per_hour"] == pytest.approx(1.2)
    assert alert.attribution["by_feature_share"] == {"summary": 1.0}


def test_session_budget_silent_when_far_from_the_limit(home):
    write(home, [call(NOW - 2100 + i * 60, cost_usd=0.1 / 35) for i in range(35)])
    assert kinds(run(home, Settings(budget_usd=1.0)), "budget") == []


def _tenant_day(home, last_hour_usd: float) -> None:
    yesterday = [call(t, tenant="acme", cost_usd=1.0) for t in spread(NOW - 30 * HOUR, 10)]
    morning = [call(t, tenant="acme", cost_usd=0.1, feature="summary") for t in spread(NOW - 11 * HOUR, 20, 8 * HOUR)]
    recent = [call(t, tenant="acme", cost_usd=last_hour_usd / 10, feature="chat") for t in spread(NOW - HOUR, 10)]
    write(home, yesterday + morning + recent)


def test_tenant_quota_projected_to_run_out_before_the_day_ends(home):
    _tenant_day(home, 1.0)  # $3 spent today, $1 in the last hour -> $2 left lasts 2 hours
    settings = Settings(quotas={"tenant:acme": {"usd_per_day": 5.0}})
    (alert,) = kinds(run(home, settings), "budget")
    assert alert.projected_at == pytest.approx(NOW + 2 * HOUR)
    assert alert.message.startswith("tenant `acme` usd_per_day quota ($5.00) will run out at 14:00 UTC, 10 h before")
    assert alert.attribution["spent"] == pytest.approx(3.0)  # yesterday's $10 does not count
    assert alert.attribution["by_feature_share"] == {"chat": 1.0}
    assert "quotas['tenant:acme']['usd_per_day']" in alert.check_next


def test_tenant_quota_silent_when_the_day_ends_first(home):
    _tenant_day(home, 0.05)
    assert kinds(run(home, Settings(quotas={"tenant:acme": {"usd_per_day": 5.0}})), "budget") == []


def test_exhausted_quota_is_critical(home):
    _tenant_day(home, 3.5)
    (alert,) = kinds(run(home, Settings(quotas={"tenant:acme": {"usd_per_day": 5.0}})), "budget")
    assert alert.severity == "critical" and "is used up" in alert.message and "being refused" in alert.check_next


# ---- thresholds ---------------------------------------------------------------------------------


def test_thresholds_come_from_pyproject_alerts_table(home, tmp_path, monkeypatch):
    _reliability(home, "retry", before_bad=1, now_bad=10)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.llmguard]\ntimeout_s = 30\n\n[tool.llmguard.alerts]\nretry-rate = 0.5\n"
    )
    monkeypatch.chdir(project)
    assert alerts_mod.load_thresholds()["retry_rate"] == 0.5
    # settings=None reads the project's settings even with the alerts table present
    assert kinds(alerts(home / "ledger.sqlite3", now=NOW), "reliability") == []
    assert alerts_mod.project_settings().timeout_s == 30
    found = alerts(home / "ledger.sqlite3", now=NOW, alert_thresholds={"retry_rate": 0.05})
    assert [a.metric for a in kinds(found, "reliability")] == ["retry_rate"]


def test_unknown_threshold_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown alert threshold 'retry_rat'.*retry_rate"):
        alerts_mod.load_thresholds({"retry_rat": 0.1})


def test_alert_serialises_with_its_numbers(home):
    _reliability(home, "timeout", before_bad=0, now_bad=10)
    (alert,) = kinds(run(home), "reliability")
    data = alert.to_dict()
    assert {"kind", "severity", "message", "check_next", "attribution", "before", "after", "change"} <= set(data)
    assert data["before"] == 0.0 and data["change"] is None  # up from nothing
