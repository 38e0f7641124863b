"""The HTML report in headless Chromium: it makes no network request and its charts are drawn.

Needs the `playwright` Python package and Debian's `chromium` (Playwright's own browser download is
not used). Skipped when either is missing, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import argparse
import time

import pytest

import llmguard
from llmguard.config import Settings
from llmguard.context import StepEvent
from llmguard.ledger.sqlite import CallEvent, Ledger
from llmguard.reporting.cli import add_report_arguments, run_report
from llmguard.reporting.html import report_html
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.conftest import openai_client

FEATURES = ("summary", "chat", "classify")
MODELS = ("gpt-4o", "gpt-4o-mini")


def _browser():
    require_browser("the HTML report browser test")
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture
def ledger(fresh_sim, home):
    """Real calls (two models, a step, a retry) and six hours of injected calls across three features."""
    llmguard.install(home=str(home), backoff_base_s=0.01)
    client = openai_client(fresh_sim)
    fresh_sim.configure(faults=["500"])
    for i in range(4):
        with llmguard.tag(feature=FEATURES[i % 3]):
            with llmguard.step("retrieval"):
                time.sleep(0.002)
            client.chat.completions.create(
                model=MODELS[i % 2], max_tokens=20, messages=[{"role": "user", "content": f"q{i}"}]
            )
    llmguard.uninstall()
    now = time.time()
    injected = Ledger(home, run_id="history")
    for i in range(60):
        event = CallEvent(
            ts=now - 6 * 3600 + i * 360,
            provider="openai",
            endpoint="chat.completions",
            model=MODELS[i % 2],
            requested_model=MODELS[i % 2],
            feature=FEATURES[i % 3],
            input_tokens=500,
            output_tokens=80,
            cost_usd=0.002 * (1 + i % 3),
            total_ms=200.0 + i,
            model_ms=150.0 + i,
            queue_ms=10.0 * (i % 4),
            ttft_ms=50.0 + i,
            steps={"retrieval": 20.0 + i % 7, "validation": 5.0},
        )
        injected.record(event)
        for name, ms in event.steps.items():  # the steps around the call, each a row of its own as step() records
            injected.record_step(StepEvent(name=name, duration_ms=ms, ts=event.ts, calls=1, feature=event.feature))
    injected.close()
    return home / "ledger.sqlite3"


def test_html_report_opens_offline_and_draws_its_charts(ledger, tmp_path, capsys):
    sync_playwright = _browser()
    out = tmp_path / "report.html"
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert run_report(parser.parse_args(["--home", str(ledger.parent), "--format", "html", "--out", str(out)])) == 0
    text = out.read_text()
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    url = out.resolve().as_uri()
    requests, console_errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_load_state("load")
            spend = page.eval_on_selector_all(
                'svg[data-chart="spend-over-time"] rect.bar',
                "els => els.map(e => [e.dataset.series, e.getBoundingClientRect().height])",
            )
            features = page.eval_on_selector_all(
                'svg[data-chart="cost-by-feature"] rect.bar',
                "els => els.map(e => [e.dataset.label, e.getBoundingClientRect().width])",
            )
            steps = page.eval_on_selector_all(
                'svg[data-chart="latency-by-step"] rect.bar',
                "els => els.map(e => [e.dataset.step, e.dataset.quantile, e.getBoundingClientRect().width])",
            )
            rows = page.eval_on_selector_all('[data-table="breakdown"] tbody tr', "els => els.length")
            alerts_shown = page.locator("[data-alerts]").count()
            screenshot = page.screenshot(full_page=True)
        finally:
            browser.close()
    (tmp_path / "report.png").write_bytes(screenshot)
    assert requests == [url]  # the file itself, nothing else
    assert console_errors == []  # no blocked loads (the page's CSP would report them)
    assert {series for series, _ in spend} == set(MODELS) and all(h > 0 for _, h in spend)
    assert len(spend) >= 6  # six hours of history in hourly buckets, per model
    assert sorted(label for label, _ in features) == sorted(FEATURES) and all(w > 0 for _, w in features)
    drawn = {(step, q) for step, q, w in steps if w > 0}
    for part in ("step: retrieval", "step: validation", "queue wait", "model", "time to first token", "total"):
        assert {(part, "p50"), (part, "p95"), (part, "p99")} <= drawn, part
    assert rows == len(MODELS) and alerts_shown == 1


def test_notebook_fragment_renders_inline(ledger):
    sync_playwright = _browser()
    fragment = report_html(ledger, by="feature", settings=Settings())
    assert not fragment.lstrip().startswith("<!doctype") and fragment.startswith('<div class="llmguard-report">')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.set_content(f"<html><body><div id='output'>{fragment}</div></body></html>")
            charts = page.eval_on_selector_all(
                "#output svg[data-chart]",
                "els => els.map(e => [e.dataset.chart, e.querySelectorAll('rect.bar').length, "
                "e.getBoundingClientRect().width])",
            )
            rows = page.eval_on_selector_all(
                '[data-table="breakdown"] tbody tr td.k', "els => els.map(e => e.textContent)"
            )
        finally:
            browser.close()
    assert requests == []
    assert {name for name, bars, width in charts if bars > 0 and width > 0} == {
        "spend-over-time",
        "cost-by-feature",
        "latency-by-step",
    }
    assert sorted(rows) == sorted(FEATURES)
