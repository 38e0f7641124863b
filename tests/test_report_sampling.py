"""Very large ranges: percentiles from a deterministic sample, cost drivers named by a sample.

The thresholds are lowered (module settings, not mocks) so a ledger of a few thousand calls
takes the paths a million-call ledger takes. Sampled percentiles are checked the way a sample can
be: each is a value some call of its group had, and its exact rank in the group lies within four
standard errors of the rank asked for. Small groups, `exact=True` and `--exact` stay exact.
"""

from __future__ import annotations

import argparse
import json
import math
import random

import pytest

from llmguard.context import StepEvent
from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting import report, sampling
from llmguard.reporting.cli import add_report_arguments, run_report
from tests.test_report import nearest_rank

NOW = 1_790_000_000.0


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(sampling, "SAMPLE_ABOVE", 2_000)
    monkeypatch.setattr(sampling, "SAMPLE_BUDGET", 1_200)
    monkeypatch.setattr(sampling, "SAMPLE_MIN", 400)


def build(home, groups: dict[str, int], latency, steps_every: int = 3) -> dict[str, list[CallEvent]]:
    """Calls of each model in turn (interleaved, as a busy ledger is), latencies from `latency(model, i)`.

    Each model's calls are also its own feature, so its steps (one run around every `steps_every`-th
    call, recorded as step() records them) fall into its group when grouped by feature: a step row
    records its tags, not a model."""
    ledger = Ledger(home, run_id="big")
    left = dict(groups)
    made: dict[str, list[CallEvent]] = {m: [] for m in groups}
    i = 0
    while any(left.values()):
        for model in groups:
            if not left[model]:
                continue
            left[model] -= 1
            n = len(made[model])
            event = CallEvent(
                ts=NOW - 86400 + i,
                provider="openai",
                endpoint="chat.completions",
                model=model,
                requested_model=model,
                feature=model,
                input_tokens=10,
                output_tokens=5,
                cost_usd=0.001,
                total_ms=latency(model, n),
                ttft_ms=latency(model, n) / 3,
                queue_ms=0.0,
                retry_delay_ms=0.0,
                steps={"retrieval": latency(model, n) / 2} if n % steps_every == 0 else {},
            )
            ledger.record(event)
            if event.steps:
                ledger.record_step(
                    StepEvent(
                        name="retrieval", duration_ms=event.steps["retrieval"], ts=event.ts, calls=1, feature=model
                    )
                )
            made[model].append(event)
            i += 1
    ledger.close()
    return made


def assert_rank_close(value: float, values: list[float], q: int, sample: int) -> None:
    """`value` is one of `values`, at a rank within four standard errors of the q-th percentile's."""
    ordered = sorted(values)
    assert value in ordered
    n = len(ordered)
    low = ordered.index(value) + 1
    high = n - ordered[::-1].index(value)  # ties: any rank the value holds
    target = math.ceil(q * n / 100)
    slack = 4 * math.sqrt(q / 100 * (1 - q / 100) / sample) * n + 2
    assert low - slack <= target <= high + slack, f"p{q}: rank {low}-{high} of {n}, wanted {target} ± {slack:.0f}"


def test_big_groups_are_sampled_small_ones_stay_exact(home, small_thresholds):
    rng = random.Random(3)
    draws = {
        m: [rng.lognormvariate(math.log(800), 0.6) for _ in range(n)]
        for m, n in (("big-a", 3000), ("big-b", 2500), ("small", 300))
    }
    made = build(home, {m: len(v) for m, v in draws.items()}, lambda m, i: draws[m][i], steps_every=2)
    rows = {r["feature"]: r for r in report.breakdown(home / "ledger.sqlite3", "feature")}

    # a small group's steps stay exact; its latencies come from the rollup's histograms (kept by model
    # and feature), which are as close for a small group as for a big one: a value it had, within 2%
    assert "steps" not in rows["small"]["sampled_percentiles"]
    for q in (50, 95, 99):
        value, exact = rows["small"][f"p{q}_ms"], nearest_rank(draws["small"], q)
        assert value in draws["small"] and value == pytest.approx(exact, rel=0.02)
    for model in ("big-a", "big-b"):
        row = rows[model]
        assert set(row["sampled_percentiles"]) == {"total", "ttft", "steps"}
        assert row["calls"] == len(made[model])  # counts and sums never come from the sample
        for q in (50, 95, 99):
            assert_rank_close(row[f"p{q}_ms"], draws[model], q, sample=400)
            assert_rank_close(row[f"ttft_p{q}_ms"], [v / 3 for v in draws[model]], q, sample=400)
        retrieval = [v / 2 for i, v in enumerate(draws[model]) if i % 2 == 0]
        assert row["steps"]["retrieval"]["calls"] == len(retrieval)
        for q in (50, 95, 99):
            assert_rank_close(row["steps"]["retrieval"][f"p{q}_ms"], retrieval, q, sample=400)
    # no value is far off either: the sampled median is within 10% of the exact one
    for model in ("big-a", "big-b"):
        assert rows[model]["p50_ms"] == pytest.approx(nearest_rank(draws[model], 50), rel=0.1)


def test_exact_sorts_everything_and_sampling_is_deterministic(home, small_thresholds):
    rng = random.Random(5)
    draws = {"big-a": [rng.uniform(10, 5000) for _ in range(4000)]}
    build(home, {"big-a": 4000}, lambda m, i: draws[m][i])
    path = home / "ledger.sqlite3"
    first, again = report.breakdown(path, "feature"), report.breakdown(path, "feature")
    assert first == again
    assert first[0]["sampled_percentiles"]
    [exact] = report.breakdown(path, "feature", exact=True)
    assert exact["sampled_percentiles"] == []
    for q in (50, 95, 99):
        assert exact[f"p{q}_ms"] == nearest_rank(draws["big-a"], q)
        assert exact["steps"]["retrieval"][f"p{q}_ms"] == nearest_rank(
            [v / 2 for i, v in enumerate(draws["big-a"]) if i % 3 == 0], q
        )


def test_the_sample_does_not_alias_with_calls_that_come_in_a_cycle(home, small_thresholds):
    # Four steps per document, eight calls per loop: latency is set by the call's place in the cycle.
    # A `rowid % 8` sample would see one place only and report its latency as every percentile.
    levels = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0]
    made = build(home, {"cycle": 4000}, lambda m, i: levels[i % 8] + (i % 7) * 0.01, steps_every=1)
    [row] = report.breakdown(home / "ledger.sqlite3", "model")
    assert row["sampled_percentiles"]
    values = [e.total_ms for e in made["cycle"]]
    for q in (50, 95, 99):
        assert_rank_close(row[f"p{q}_ms"], values, q, sample=400)
    assert row["p50_ms"] // 100 == 4 and row["p95_ms"] // 100 == 8


def test_cost_drivers_from_a_sample_match_the_exact_ones(home, small_thresholds):
    ledger = Ledger(home, run_id="drivers")
    rng = random.Random(11)
    # spend is skewed, as it is in life: a few tenants pay for most of it
    for i in range(6000):
        tenant = ["whale"] * 4 + ["big"] * 2 + ["mid"] * 2 + [f"t{rng.randrange(300)}"] * 2
        tenant = tenant[i % 10]
        ledger.record(
            CallEvent(
                ts=NOW - 3600 + i * 0.5,
                provider="openai",
                endpoint="chat.completions",
                model="gpt-4o-mini",
                feature="chat" if tenant == "mid" else ["chat", "summary"][i % 2],
                tenant=tenant,
                prompt_version="v1",
                input_tokens=100,
                output_tokens=10,
                cost_usd=round(rng.uniform(0.5, 1.5) * (3 if tenant == "whale" else 1), 6),
            )
        )
    ledger.close()
    path = home / "ledger.sqlite3"
    exact = report.top_cost_drivers(path, exact=True)
    assert [d["tenant"] for d in exact] == ["whale", "whale", "mid", "big", "big"]
    assert report._drivers_from_sample(path, "", [], 6000, 5) is not None  # the sample was sure
    assert report.top_cost_drivers(path) == exact


def test_evenly_spread_spend_falls_back_to_summing_every_combination(home, small_thresholds):
    ledger = Ledger(home, run_id="even")
    for i in range(6000):
        ledger.record(
            CallEvent(
                ts=NOW - 3600 + i * 0.5,
                provider="openai",
                endpoint="chat.completions",
                model="gpt-4o-mini",
                feature="chat",
                tenant=f"t{i % 1000}",
                prompt_version="v1",
                input_tokens=100,
                output_tokens=10,
                cost_usd=0.001 + (i % 1000) * 1e-9,
            )
        )
    ledger.close()
    path = home / "ledger.sqlite3"
    assert report._drivers_from_sample(path, "", [], 6000, 5) is None  # near ties: unsure
    drivers = report.top_cost_drivers(path)
    assert [d["tenant"] for d in drivers] == ["t999", "t998", "t997", "t996", "t995"]
    assert drivers == report.top_cost_drivers(path, exact=True)


def test_cli_marks_estimates_and_exact_turns_them_off(home, small_thresholds, capsys, monkeypatch):
    rng = random.Random(9)
    draws = {"big-a": [rng.uniform(10, 5000) for _ in range(3000)]}
    build(home, {"big-a": 3000}, lambda m, i: draws[m][i])
    monkeypatch.chdir(home)

    def run(*argv: str) -> str:
        parser = argparse.ArgumentParser()
        add_report_arguments(parser)
        assert run_report(parser.parse_args(["--home", str(home), *argv])) == 0
        return capsys.readouterr().out

    table = run()
    assert "≈" in table and "--exact sorts them all" in table
    assert "≈" not in run("--exact")
    data = json.loads(run("--format", "json"))
    assert data["rows"][0]["sampled_percentiles"]
    exact = json.loads(run("--format", "json", "--exact"))["rows"][0]
    assert exact["sampled_percentiles"] == []
    assert exact["p95_ms"] == nearest_rank(draws["big-a"], 95)
