"""Reports from a ledger built through the real pipeline (openai/anthropic SDKs against the simulator)
plus injected rows with known numbers: every figure of the JSON report is checked against a
computation in plain Python over the raw rows, and the injected group against numbers by hand."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import time
from collections import defaultdict
from datetime import UTC, datetime

import pytest

import llmguard
from llmguard.context import StepEvent
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events, read_steps
from llmguard.reporting import report
from llmguard.reporting.cli import add_report_arguments, run_report, sparkline
from tests.conftest import anthropic_client, openai_client

DAY = 86400.0
STEP_DIMENSIONS = {"tenant", "user", "feature", "prompt_version", "notebook", "cell", "run_id", "day", "hour"}


# ---- an independent computation of every figure -------------------------------------------------


def nearest_rank(values: list[float], q: int) -> float | None:
    values = sorted(values)
    if not values:
        return None
    return values[-(-q * len(values) // 100) - 1]  # the ceil(q n / 100)-th smallest


def expected_row(rows: list[dict], step_rows: list[dict] = ()) -> dict:
    """The figures of a group of call rows, its steps from the step rows of the same group."""
    n = len(rows)
    e = {
        "calls": n,
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "cached_input_tokens": sum(r["cached_input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "reasoning_tokens": sum(r["reasoning_tokens"] for r in rows),
        "cost_usd": sum(r["cost_usd"] or 0.0 for r in rows),
        "unpriced_calls": sum(r["cost_usd"] is None for r in rows),
        "cache_hits": sum(bool(r["cache_hit"]) for r in rows),
        "saved_usd": sum(r["saved_usd"] or 0.0 for r in rows),
        "dedup_hits": sum(bool(r["dedup_hit"]) for r in rows),
        "retries": sum(r["retry_count"] for r in rows),
        "retried_calls": sum(r["retry_count"] > 0 for r in rows),
        "timeouts": sum(r["error_type"] in ("timeout", "deadline") for r in rows),
        "rate_limit_refusals": sum(r["status"] == "refused" and r["error_type"] == "rate_limit" for r in rows),
        "provider_429s": sum(r["error_type"] == "rate_limited" for r in rows),
        "budget_refusals": sum(r["status"] == "refused" and r["error_type"] == "budget" for r in rows),
        "refusals": sum(r["status"] == "refused" for r in rows),
        "fallbacks": sum(bool(r["fallback_used"]) for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "incomplete": sum(r["status"] == "incomplete" for r in rows),
        "failures": sum(r["status"] != "ok" for r in rows),
        "queued_calls": sum((r["queue_ms"] or 0) > 0 for r in rows),
        "first_ts": min(r["ts"] for r in rows),
        "last_ts": max(r["ts"] for r in rows),
    }
    e["tokens_per_call"] = (e["input_tokens"] + e["output_tokens"]) / n
    e["cost_per_call"] = e["cost_usd"] / n
    for rate, count in (
        ("cache_hit_rate", "cache_hits"),
        ("retry_rate", "retried_calls"),
        ("timeout_rate", "timeouts"),
        ("fallback_rate", "fallbacks"),
        ("error_rate", "errors"),
        ("failure_rate", "failures"),
    ):
        e[rate] = e[count] / n
    for figure, column in (
        ("", "total_ms"),
        ("ttft_", "ttft_ms"),
        ("queue_", "queue_ms"),
        ("retry_delay_", "retry_delay_ms"),
    ):
        values = [r[column] for r in rows if r[column] is not None]
        for q in (50, 95, 99):
            e[f"{figure}p{q}_ms"] = nearest_rank(values, q)
    e["steps"] = expected_steps(step_rows)
    return e


def expected_steps(step_rows: list[dict]) -> dict:
    """Per step name: one sample per run, and the calls made inside those runs."""
    steps: dict[str, list[dict]] = defaultdict(list)
    for r in step_rows:
        steps[r["name"]].append(r)
    return {
        name: {
            "runs": len(v),
            "calls": sum(r["calls"] for r in v),
            **{f"p{q}_ms": nearest_rank([r["duration_ms"] for r in v], q) for q in (50, 95, 99)},
        }
        for name, v in sorted(steps.items())
    }


def group_rows(rows: list[dict], dims: list[str]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = []
        for d in dims:
            if d == "day":
                key.append(datetime.fromtimestamp(r["ts"], tz=UTC).strftime("%Y-%m-%d"))
            elif d == "hour":
                key.append(datetime.fromtimestamp(r["ts"], tz=UTC).strftime("%Y-%m-%d %H:00"))
            else:
                key.append(r[d])
        groups[tuple(key)].append(r)
    return groups


def assert_same(actual: dict, expected: dict, where: str) -> None:
    assert set(actual) >= set(expected), f"{where}: missing {set(expected) - set(actual)}"
    for key, value in expected.items():
        got = actual[key]
        if isinstance(value, dict):
            assert set(got) == set(value), f"{where}.{key}"
            for name in value:
                assert_same(got[name], value[name], f"{where}.{key}.{name}")
        elif isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), f"{where}.{key}: {got} != {value}"
        else:
            assert got == value, f"{where}.{key}: {got!r} != {value!r}"


# ---- the ledger ---------------------------------------------------------------------------------


def injected(home, now: float) -> list[CallEvent]:
    """20 calls of feature `inj` three days ago, with numbers chosen to be checked by hand."""
    ledger = Ledger(home, run_id="injected-run")
    events = []
    for i in range(20):
        events.append(
            CallEvent(
                ts=now - 3 * DAY + i * 60,
                provider="openai",
                endpoint="chat.completions",
                model="gpt-4o-mini",
                requested_model="gpt-4o-mini",
                feature="inj",
                tenant="t1" if i % 2 else "t2",
                prompt_version="v9",
                input_tokens=100 + i,
                cached_input_tokens=10 if i < 5 else 0,
                output_tokens=20,
                reasoning_tokens=i % 3,
                cost_usd=None if i == 7 else 0.001 * (i + 1),
                total_ms=10.0 * (i + 1),
                ttft_ms=5.0 * (i + 1) if i % 3 else None,
                queue_ms={3: 300.0, 11: 100.0, 17: 200.0}.get(i, 0.0),
                retry_delay_ms=500.0 if i in (4, 5) else 0.0,
                retry_count=2 if i == 4 else 1 if i == 5 else 0,
                status="error" if i in (1, 2) else "refused" if i in (8, 9) else "ok",
                error_type={1: "timeout", 2: "http_500", 8: "rate_limit", 9: "budget", 12: "rate_limited"}.get(i),
                cache_hit=i in (13, 14),
                saved_usd=0.25 if i in (13, 14) else None,
                dedup_hit=i == 15,
                fallback_used=i in (16, 18),
                steps={"retrieval": float(i), "validation": 1.0} if i < 10 else {"retrieval": float(i)},
            )
        )
    for event in events:
        ledger.record(event)
        # the steps each call ran inside, as step() records them: one row per run, one call inside
        for name, ms in event.steps.items():
            ledger.record_step(
                StepEvent(
                    name=name,
                    duration_ms=ms,
                    ts=event.ts,
                    calls=1,
                    feature=event.feature,
                    tenant=event.tenant,
                    prompt_version=event.prompt_version,
                )
            )
    ledger.close()
    return events


@pytest.fixture
def ledger(fresh_sim, home):
    """Real calls through the guard (tags, a step, streams, a retry, anthropic) + the injected rows."""
    llmguard.install(home=str(home), backoff_base_s=0.01, max_attempts=3)
    client = openai_client(fresh_sim)
    for i in range(5):
        with llmguard.tag(feature="summary", tenant="acme", prompt_version="s1"):
            with llmguard.step("retrieval") if i == 0 else contextlib.nullcontext():  # the call inside the step
                time.sleep(0.005 if i == 0 else 0)
                client.chat.completions.create(
                    model="gpt-4o", max_tokens=40, messages=[{"role": "user", "content": f"Summarise report {i}"}]
                )
    for i in range(3):
        with llmguard.tag(feature="chat", tenant="globex"):
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", max_tokens=30, stream=True, messages=[{"role": "user", "content": f"Hello {i}"}]
            ):
                pass
    fresh_sim.configure(faults=["500"])
    with llmguard.tag(feature="summary", tenant="acme", prompt_version="s1"):
        client.chat.completions.create(
            model="gpt-4o", max_tokens=40, messages=[{"role": "user", "content": "Summarise after a failure"}]
        )
    fresh_sim.configure(faults=None)
    with llmguard.tag(feature="assistant", tenant="acme"):
        anthropic_client(fresh_sim).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=50, messages=[{"role": "user", "content": "Draft a reply"}]
        )
    llmguard.uninstall()
    now = time.time()
    injected(home, now)
    return home / "ledger.sqlite3"


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    code = run_report(parser.parse_args(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["feature", "feature,model", "provider", "day", "tenant,prompt_version"])
def test_every_json_figure_matches_a_computation_over_the_raw_rows(ledger, capsys, by):
    code, out, _ = cli(["--home", str(ledger.parent), "--format", "json", "--by", by], capsys)
    assert code == 0
    data = json.loads(out)
    raw = read_events(ledger)
    assert {r["status"] for r in raw} >= {"ok", "error", "refused"}  # the ledger exercises every counter
    assert any(r["retry_count"] and r["run_id"] != "injected-run" for r in raw)  # a real retry
    assert any(r["ttft_ms"] and r["run_id"] != "injected-run" for r in raw)  # real streams
    assert any(r["steps"] and r["run_id"] != "injected-run" for r in raw)  # a real llmguard.step
    steps = read_steps(ledger)
    assert any(s["run_id"] != "injected-run" for s in steps)  # ... and its own row
    dims = by.split(",")
    groups = group_rows(raw, dims)
    # steps are split by what they record; by a model or provider they are not split at all
    step_groups = group_rows(steps, dims) if set(dims) <= STEP_DIMENSIONS else {}
    assert data["by"] == dims
    assert len(data["rows"]) == len(groups)
    for row in data["rows"]:
        key = tuple(row[d] for d in dims)
        assert_same(row, expected_row(groups[key], step_groups.get(key, [])), f"{by}={key}")
    assert_same({"steps": data["steps"]}, {"steps": expected_steps(steps)}, "report")  # the whole range
    total = expected_row(raw)
    for name in (
        "calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "saved_usd",
        "refusals",
        "failures",
        "retried_calls",
        "tokens_per_call",
        "cost_per_call",
        "retry_rate",
        "error_rate",
    ):
        assert data["total"][name] == pytest.approx(total[name]), name


def test_the_injected_group_against_numbers_worked_out_by_hand(ledger):
    (row,) = report.breakdown(ledger, "feature", report.Filters(where=(("feature", "inj"),)))
    assert row["calls"] == 20
    assert row["input_tokens"] == sum(range(100, 120)) == 2190
    assert row["cached_input_tokens"] == 50 and row["output_tokens"] == 400 and row["reasoning_tokens"] == 19
    assert row["tokens_per_call"] == pytest.approx((2190 + 400) / 20)
    assert row["cost_usd"] == pytest.approx(0.001 * (210 - 8))  # 1+2+...+20 thousandths, minus the unpriced 8th
    assert row["unpriced_calls"] == 1
    assert row["cost_per_call"] == pytest.approx(0.202 / 20)
    assert (row["cache_hits"], row["saved_usd"], row["cache_hit_rate"]) == (2, pytest.approx(0.5), 0.1)
    assert row["dedup_hits"] == 1 and row["fallbacks"] == 2 and row["fallback_rate"] == 0.1
    assert (row["retries"], row["retried_calls"], row["retry_rate"]) == (3, 2, 0.1)
    assert (row["timeouts"], row["timeout_rate"]) == (1, 0.05)
    assert (row["rate_limit_refusals"], row["budget_refusals"], row["refusals"], row["provider_429s"]) == (1, 1, 2, 1)
    assert (row["errors"], row["error_rate"], row["failures"]) == (2, 0.1, 4)
    assert row["queued_calls"] == 3
    # total_ms = 10, 20, ..., 200: ranks ceil(.5*20)=10, ceil(.95*20)=19, ceil(.99*20)=20
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (100.0, 190.0, 200.0)
    # ttft on 13 calls = 10, 15, 25, 30, 40, 45, 55, 60, 70, 75, 85, 90, 100: ranks ceil(6.5)=7, ceil(12.35)=13, 13
    assert (row["ttft_p50_ms"], row["ttft_p95_ms"], row["ttft_p99_ms"]) == (55.0, 100.0, 100.0)
    # queue: 17 zeros then 100, 200, 300: rank 10 -> 0, rank 19 -> 200, rank 20 -> 300
    assert (row["queue_p50_ms"], row["queue_p95_ms"], row["queue_p99_ms"]) == (0.0, 200.0, 300.0)
    # retry delay: 18 zeros, two 500s: rank 19 and 20 are 500
    assert (row["retry_delay_p50_ms"], row["retry_delay_p95_ms"], row["retry_delay_p99_ms"]) == (0.0, 500.0, 500.0)
    # retrieval = 0..19 on 20 runs: ranks 10, 19, 20; validation = 1.0 on 10 runs; one call inside each run
    assert row["steps"]["retrieval"] == {"runs": 20, "calls": 20, "p50_ms": 9.0, "p95_ms": 18.0, "p99_ms": 19.0}
    assert row["steps"]["validation"] == {"runs": 10, "calls": 10, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0}


def test_time_ranges_runs_and_filters(ledger, capsys):
    raw = read_events(ledger)
    live = [r for r in raw if r["run_id"] != "injected-run"]
    code, out, _ = cli(["--home", str(ledger.parent), "--format", "json", "--by", "run_id", "--since", "2d"], capsys)
    assert code == 0 and [r["run_id"] for r in json.loads(out)["rows"]] == [live[0]["run_id"]]
    # an absolute range covering the first 10 injected minutes only: [start, start + 10 min)
    start = min(r["ts"] for r in raw)
    since = datetime.fromtimestamp(int(start), tz=UTC).isoformat()  # whole seconds: at or before start
    code, out, _ = cli(
        [
            "--home",
            str(ledger.parent),
            "--format",
            "json",
            "--by",
            "feature",
            "--since",
            since,
            "--until",
            str(start + 600),
        ],
        capsys,
    )
    (row,) = json.loads(out)["rows"]
    assert row["feature"] == "inj" and row["calls"] == 10
    code, out, _ = cli(["--home", str(ledger.parent), "--format", "json", "--by", "feature", "--last-run"], capsys)
    assert {r["feature"] for r in json.loads(out)["rows"]} == {"summary", "chat", "assistant"}
    assert sum(r["calls"] for r in json.loads(out)["rows"]) == len(live)
    code, out, _ = cli(
        ["--home", str(ledger.parent), "--format", "json", "--by", "model", "--where", "tenant=acme"], capsys
    )
    rows = json.loads(out)["rows"]
    assert sum(r["calls"] for r in rows) == sum(r["tenant"] == "acme" for r in raw)


def test_spend_over_time_and_top_cost_drivers_add_up(ledger, capsys):
    code, out, _ = cli(["--home", str(ledger.parent), "--format", "json"], capsys)
    data = json.loads(out)
    raw = read_events(ledger)
    total_cost = sum(r["cost_usd"] or 0 for r in raw)
    buckets = data["spend_over_time"]["buckets"]
    assert sum(b["cost_usd"] for b in buckets) == pytest.approx(total_cost)
    assert data["spend_over_time"]["bucket_s"] == 14400  # three days of data: 4-hour buckets (at most 60)
    for b in buckets:
        assert sum(b["by"].values()) == pytest.approx(b["cost_usd"])
    combos = group_rows(raw, list(report.DRIVER_DIMENSIONS))
    ranked = sorted(combos.items(), key=lambda kv: -sum(r["cost_usd"] or 0 for r in kv[1]))[:5]
    assert len(data["top_cost_drivers"]) == 5
    for driver, (key, rows) in zip(data["top_cost_drivers"], ranked, strict=True):
        cost = sum(r["cost_usd"] or 0 for r in rows)
        assert tuple(driver[d] for d in report.DRIVER_DIMENSIONS) == key
        assert driver["cost_usd"] == pytest.approx(cost) and driver["calls"] == len(rows)
        assert driver["share"] == pytest.approx(cost / total_cost)


def test_csv_has_the_json_figures_with_steps_flattened(ledger, capsys):
    code, out, _ = cli(["--home", str(ledger.parent), "--format", "csv", "--by", "feature"], capsys)
    assert code == 0
    table = {r["feature"]: r for r in csv.DictReader(io.StringIO(out))}
    rows = {r["feature"]: r for r in report.breakdown(ledger, "feature")}
    assert set(table) == set(rows)
    assert float(table["inj"]["p95_ms"]) == 190.0 and float(table["inj"]["step.retrieval.p95_ms"]) == 18.0
    assert int(table["inj"]["calls"]) == 20 and float(table["inj"]["cost_usd"]) == pytest.approx(0.202)
    assert float(table["summary"]["cost_usd"]) == pytest.approx(rows["summary"]["cost_usd"])


def test_jsonl_exports_the_seed_event_shape(ledger, capsys, tmp_path):
    target = tmp_path / "events.jsonl"
    code, _, _ = cli(["--home", str(ledger.parent), "--format", "jsonl", "--out", str(target)], capsys)
    assert code == 0
    events = [json.loads(line) for line in target.read_text().splitlines()]
    raw = read_events(ledger)
    assert [e["request_id"] for e in events] == [r["request_id"] for r in raw]
    seed_keys = {
        "request_id",
        "feature",
        "tenant_id",
        "model",
        "prompt_version",
        "input_tokens",
        "output_tokens",
        "estimated_cost",
        "latency_ms",
        "retry_count",
        "cache_hit",
        "fallback_used",
    }
    by_id = {r["request_id"]: r for r in raw}
    for event in events:
        assert seed_keys <= set(event)
        row = by_id[event["request_id"]]
        assert event["tenant_id"] == row["tenant"] and event["estimated_cost"] == row["cost_usd"]
        assert event["latency_ms"]["total"] == row["total_ms"] and event["latency_ms"]["queue"] == row["queue_ms"]
        for name, ms in row["steps"].items():
            assert event["latency_ms"][name] == ms
        assert isinstance(event["cache_hit"], bool) and isinstance(event["fallback_used"], bool)


def test_terminal_report_shows_alerts_tables_sparkline_and_drivers(ledger, capsys):
    code, out, _ = cli(["--home", str(ledger.parent), "--by", "feature", "--full"], capsys)
    assert code == 0
    assert out.index("alert") < out.index("cost by feature")  # alerts come first
    for title in ("per call and cache", "reliability", "latency ms", "top cost drivers", "spend per 4 h"):
        assert title in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")


def test_sparkline_scales_to_the_largest_value():
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"


def test_summary_and_last_run_keep_their_meaning(ledger):
    run = report.last_run_id(ledger)
    live = [r for r in read_events(ledger) if r["run_id"] == run]
    assert live and all(r["run_id"] != "injected-run" for r in live)
    rows = report.summary(ledger, by="model", run_id=run)
    assert sum(r["calls"] for r in rows) == len(live)
    for row in rows:
        mine = [r for r in live if r["model"] == row["model"]]
        assert row["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in mine))
        assert row["p95_ms"] == nearest_rank([r["total_ms"] for r in mine], 95)
    assert report.to_table(rows, by="model").row_count == len(rows) + (len(rows) > 1)


def test_usage_errors_exit_2_with_the_fix(ledger, capsys, tmp_path):
    code, _, err = cli(["--home", str(ledger.parent), "--by", "colour"], capsys)
    assert code == 2 and "cannot group by 'colour'" in err and "prompt_version" in err
    code, _, err = cli(["--home", str(ledger.parent), "--since", "yesterday-ish"], capsys)
    assert code == 2 and "24h" in err
    code, _, err = cli(["--home", str(ledger.parent), "--where", "feature"], capsys)
    assert code == 2 and "DIM=VALUE" in err
    code, _, err = cli(["--home", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no ledger" in err


def test_parse_time_forms():
    now = 1_700_000_000.0
    assert report.parse_time("24h", now) == now - 86400
    assert report.parse_time("30m", now) == now - 1800
    assert report.parse_time("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert report.parse_time("2024-05-01T12:00+02:00", now) == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    with pytest.raises(report.ReportError):
        report.parse_time("soon", now)
