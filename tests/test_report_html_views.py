"""The HTML report as people see it, in headless Chromium: on a phone and a desktop, in light and dark,
and inside a notebook that uses JupyterLab Dark; with its headline, charts over time, costs by tag and
errors by model.

The ledger is made by real SDK calls against the simulator: answered calls tagged with tenants and
users, two the provider failed (a 500, an out-of-quota 429) and two the budget refused. Legibility is
measured as WCAG does it: every piece of text in the report against the background it is drawn on
(translucent layers composited), from the browser's computed styles.

Needs the `playwright` Python package and Debian's `chromium` (see tests/browser.py).
"""

from __future__ import annotations

import argparse
import math
import time

import pytest
from IPython.utils.capture import capture_output

import llmguard
from llmguard.ledger.sqlite import CallEvent, Ledger, read_events
from llmguard.money import usd
from llmguard.reporting.cli import add_report_arguments, run_report
from llmguard.reporting.html import html_page, report_html
from llmguard.reporting.units import ms
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.conftest import FAKE_OPENAI_KEY, openai_client, sdk_shell

TENANTS = ("acme", "globex")
USERS = ("alice", "bob", "carol")
MODELS = ("gpt-4o", "gpt-4o-mini")
WIDTHS = (390, 1400)

# Every text element of `root`: [text, contrast ratio against what it is drawn on, that background's
# luminance]. Colours are composited (an rgba text colour over its background, translucent backgrounds
# over their parents); SVG text is measured by its fill.
CONTRAST = """(root) => {
    const parse = (c) => {
        const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
        if (!m) return null;
        const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, base) => [0, 1, 2].map(i => top[i] * top[3] + base[i] * (1 - top[3])).concat([1]);
    const lum = (c) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
    };
    const background = (el) => {
        const chain = [];
        for (let e = el; e; e = e.parentElement) chain.unshift(e);
        let bg = [255, 255, 255, 1];
        for (const e of chain) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c && c[3] > 0) bg = over(c, bg);
        }
        return bg;
    };
    const out = [];
    for (const el of root.querySelectorAll("*")) {
        if (["style", "title", "script"].includes(el.tagName.toLowerCase())) continue;
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own || !el.getClientRects().length) continue;
        const s = getComputedStyle(el);
        const fg = parse(el instanceof SVGElement ? s.fill : s.color);
        const bg = background(el);
        const a = lum(over(fg, bg)), b = lum(bg);
        out.push([el.textContent.trim().slice(0, 40), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), b]);
    }
    return out;
}"""
BODY = """() => {
    const c = /rgba?\\(([^)]+)\\)/.exec(getComputedStyle(document.body).backgroundColor)[1].split(/[\\s,]+/).map(Number);
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}"""
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# JupyterLab Dark's values of the variables the report reads (from @jupyterlab/theme-dark-extension),
# set as JupyterLab sets them: on the document, with the body marked dark and coloured by the theme.
JUPYTERLAB_DARK = """<!doctype html><html><head><meta name="viewport" content="width=device-width,initial-scale=1">
<style>:root{--jp-layout-color0:#111;--jp-layout-color1:#212121;--jp-layout-color2:#424242;
--jp-ui-font-color0:rgba(255,255,255,1);--jp-ui-font-color1:rgba(255,255,255,0.87);
--jp-ui-font-color2:rgba(255,255,255,0.54);--jp-ui-font-color3:rgba(255,255,255,0.38);
--jp-content-font-color0:rgba(255,255,255,1);--jp-content-font-color1:rgba(255,255,255,1);
--jp-content-font-color2:rgba(255,255,255,0.7);--jp-content-font-color3:rgba(255,255,255,0.5);
--jp-border-color1:#616161;--jp-border-color2:#424242;--jp-ui-font-family:system-ui,sans-serif}
body{margin:0;background:var(--jp-layout-color0);color:var(--jp-content-font-color1)}
.jp-OutputArea-output{padding:4px 8px}</style></head>
<body data-jp-theme-light="false" data-jp-theme-name="JupyterLab Dark" style="color-scheme:dark">
<div class="jp-OutputArea-output jp-RenderedHTMLCommon" data-mime-type="text/html">OUTPUT</div></body></html>"""


def _playwright():
    require_browser("the HTML report views test")
    from playwright.sync_api import sync_playwright

    return sync_playwright


def _calls(client, model: str, n: int, tenant: str | None = None, user: str | None = None) -> list[str]:
    """`n` calls to `model` with these tags; the names of the SDK errors raised."""
    raised = []
    for i in range(n):
        with llmguard.tag(tenant=tenant, user=user):
            try:
                client.chat.completions.create(
                    model=model, max_tokens=20, messages=[{"role": "user", "content": f"question {i} for {user}"}]
                )
            except Exception as exc:  # the provider's error or the budget's refusal, in the SDK's own type
                raised.append(type(exc).__name__)
    return raised


@pytest.fixture
def ledger(fresh_sim, home):
    """Six answered calls (two tenants, three users, two models), two provider errors, two refusals."""
    guard = llmguard.install(home=str(home), max_attempts=1)
    client = openai_client(fresh_sim, max_retries=0)
    for i in range(6):
        _calls(client, MODELS[i % 2], 1, TENANTS[i % 2], USERS[i % 3])
    fresh_sim.configure(faults=["500", "quota"])
    raised = _calls(client, "gpt-4o-mini", 1, "acme", "alice") + _calls(client, "gpt-4o", 1, "globex", "bob")
    guard.configure(budget_usd=0.0000001)  # less than any call costs: the next two are refused
    raised += _calls(client, "gpt-4o", 2, "acme", "carol")
    llmguard.uninstall()
    assert raised == ["InternalServerError", "RateLimitError", "RateLimitError", "RateLimitError"]
    return home / "ledger.sqlite3"


def _file(ledger, tmp_path) -> str:
    """The report file `llmguard report --format html` writes, as a file:// URL."""
    out = tmp_path / "report.html"
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert run_report(parser.parse_args(["--home", str(ledger.parent), "--format", "html", "--out", str(out)])) == 0
    return out.resolve().as_uri()


def test_report_file_fits_a_phone_and_a_desktop_and_follows_the_dark_scheme(ledger, tmp_path):
    url = _file(ledger, tmp_path)
    seen = {}
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in WIDTHS:
                for scheme in ("light", "dark"):
                    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
                    page.goto(url)
                    seen[width, scheme] = {
                        "overflow": page.evaluate(OVERFLOW),
                        "body": page.evaluate(BODY),
                        "text": page.eval_on_selector(".llmguard-report", CONTRAST),
                        "tables": page.eval_on_selector_all(
                            "[data-table]", "els => els.map(e => e.getBoundingClientRect().right)"
                        ),
                        "shot": page.screenshot(full_page=True),
                    }
                    page.close()
        finally:
            browser.close()
    for (width, scheme), view in seen.items():
        (tmp_path / f"report-{width}-{scheme}.png").write_bytes(view["shot"])
        scroll_width, inner_width = view["overflow"]
        assert scroll_width <= inner_width == width, (width, scheme)  # no sideways scrolling of the page
        assert all(right <= width for right in view["tables"]), (width, scheme)  # wide tables scroll in their box
        assert len(view["text"]) > 100
        worst = min(view["text"], key=lambda item: item[1])
        assert worst[1] >= 4.5, (width, scheme, worst)  # WCAG AA for every piece of text
        if scheme == "dark":
            assert view["body"] < 0.2 and all(bg < 0.2 for _, _, bg in view["text"]), width
        else:
            assert view["body"] > 0.8, width
    assert seen[1400, "dark"]["shot"] != seen[1400, "light"]["shot"]


def _read(page, selector: str, script: str):
    return page.eval_on_selector_all(selector, script)


def test_report_shows_headline_errors_by_model_and_cost_by_tenant_and_user(ledger):
    rows = read_events(ledger)
    fragment = report_html(ledger, by="model", alerts=False)
    assert FAKE_OPENAI_KEY not in fragment  # error messages are shown as the ledger keeps them: scrubbed
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content(html_page(fragment))
            tiles = dict(_read(page, "[data-headline]", "els => els.map(e => [e.dataset.headline, e.innerText])"))
            errors = _read(
                page,
                '[data-table="errors"] tr',
                "els => els.map(r => [...r.children].map(c => c.textContent))",
            )
            bars = {
                name: _read(page, f'svg[data-chart="cost-by-{name}"] rect.bar', "els => els.map(e => e.dataset.label)")
                for name in ("model", "tenant", "user", "feature")
            }
            points = {
                name: _read(page, f'svg[data-chart="{name}"] circle.point', "els => els.map(e => +e.dataset.value)")
                for name in ("latency-p95-over-time", "error-rate-over-time")
            }
        finally:
            browser.close()
    total = sum(row["cost_usd"] or 0 for row in rows)
    assert tiles["cost"].split("\n")[:2] == ["cost", usd(total)]
    assert tiles["calls"].split("\n") == ["calls", "10", "retried: 0"]
    assert tiles["error-rate"].split("\n") == ["error %", "40.0%", "errors: 2 · refused: 2"]
    assert tiles["saved"].split("\n") == ["cache savings", "$0.00", "cache hits: 0"]
    latencies = sorted(row["total_ms"] for row in rows if row["total_ms"] is not None)
    p95 = latencies[math.ceil(0.95 * len(latencies)) - 1]  # nearest rank
    assert tiles["p95"].split("\n")[:2] == ["p95 latency", ms(p95)]
    head, *body = errors
    assert head == ["status", "type", "message", "gpt-4o", "gpt-4o-mini", "calls"]
    kinds = {(status, kind, o, mini, n) for status, kind, _, o, mini, n in body}
    assert kinds == {
        ("refused", "budget", "2", "", "2"),
        ("error", "http_500", "", "1", "1"),
        ("error", "rate_limited", "1", "", "1"),
    }, body
    assert sorted(bars["model"]) == sorted(MODELS) and sorted(bars["tenant"]) == sorted(TENANTS)
    assert sorted(bars["user"]) == sorted(USERS)
    assert bars["feature"] == []  # no call has a feature tag: a note says so instead of a one-bar chart
    assert points["latency-p95-over-time"] and all(v > 0 for v in points["latency-p95-over-time"])
    assert max(points["error-rate-over-time"]) > 0 and min(points["error-rate-over-time"]) >= 0


def _ticks(page) -> tuple[int, list[str]]:
    chart = page.locator('svg[data-chart="spend-over-time"]')
    return int(chart.get_attribute("data-bucket-s")), chart.locator("text.tick").all_text_contents()


def test_spend_buckets_follow_the_span_seconds_in_a_session_hours_over_a_week(ledger, home):
    [session] = {row["run_id"] for row in read_events(ledger)}
    now = time.time()
    week = Ledger(home, run_id="last-week")
    for i in range(56):  # one call every three hours for a week
        week.record(
            CallEvent(
                ts=now - 7 * 86400 + i * 10800,
                provider="openai",
                endpoint="chat.completions",
                model=MODELS[i % 2],
                requested_model=MODELS[i % 2],
                tenant=TENANTS[i % 2],
                input_tokens=100,
                output_tokens=20,
                cost_usd=0.001,
                total_ms=300.0,
            )
        )
    week.close()
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content(report_html(ledger, run_id=session, alerts=False))
            in_session = _ticks(page)
            page.set_content(report_html(ledger, run_id="last-week", alerts=False))
            over_week = _ticks(page)
        finally:
            browser.close()
    bucket, labels = in_session
    assert bucket < 60 and len(labels) >= 3  # the session lasted seconds: buckets of seconds
    assert all(len(text.split(":")) == 3 for text in labels), labels  # HH:MM:SS
    bucket, labels = over_week
    assert bucket == 10800 and len(labels) >= 3  # a week: three-hour buckets, labelled by day
    assert all(len(text) == 5 and text[2] == "-" for text in labels), labels  # MM-DD


# ---- the in-notebook report -----------------------------------------------------------------------


@pytest.fixture
def shell(home, fresh_sim, monkeypatch):
    """IPython's test shell with `%load_ext llmguard`, the SDKs pointed at the simulator."""
    ip = sdk_shell(monkeypatch, fresh_sim)
    _run(ip, "%load_ext llmguard")
    yield ip
    _run(ip, "%unload_ext llmguard")
    ip.reset()


def _run(ip, code: str) -> str:
    """Run a cell; the HTML it displayed last ("" when none)."""
    with capture_output() as captured:
        result = ip.run_cell(code, store_history=True)
    assert result.error_in_exec is None and result.error_before_exec is None, captured.stdout
    shown = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    return shown[-1] if shown else ""


def test_notebook_report_follows_by_and_is_legible_in_jupyterlab_dark(shell, fresh_sim, tmp_path):
    _run(shell, "import llmguard\nfrom openai import OpenAI\nclient = OpenAI(timeout=30, max_retries=0)")
    for i in range(5):
        _run(
            shell,
            f"with llmguard.tag(tenant={TENANTS[i % 2]!r}, user={USERS[i % 3]!r}):\n"
            f"    client.chat.completions.create(model={MODELS[i % 2]!r}, max_tokens=20, "
            f"messages=[{{'role': 'user', 'content': 'q{i}'}}])",
        )
    fresh_sim.configure(faults=["quota"])
    _run(
        shell,
        "try:\n    client.chat.completions.create(model='gpt-4o', max_tokens=5, "
        "messages=[{'role': 'user', 'content': 'q'}])\nexcept Exception as exc:\n    failed = type(exc).__name__",
    )
    assert shell.user_ns["failed"] == "RateLimitError"  # out of quota
    outputs = {by: _run(shell, f"%llmguard report --by {by}") for by in ("tenant", "model")}
    views = {}
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for by, output in outputs.items():
                for width in WIDTHS:  # the OS in light mode: only the notebook's theme says dark
                    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme="light")
                    page.set_content(JUPYTERLAB_DARK.replace("OUTPUT", output))
                    views[by, width] = {
                        "overflow": page.evaluate(OVERFLOW),
                        "text": page.eval_on_selector(".llmguard-report", CONTRAST),
                        "charts": _read(page, "svg[data-chart]", "els => els.map(e => e.dataset.chart)"),
                        "series": sorted(
                            set(
                                _read(
                                    page,
                                    'svg[data-chart="spend-over-time"] rect.bar',
                                    "els => els.map(e => e.dataset.series)",
                                )
                            )
                        ),
                        "keys": _read(page, '[data-table="breakdown"] td.k', "els => els.map(e => e.textContent)"),
                    }
                    page.screenshot(path=str(tmp_path / f"notebook-{by}-{width}.png"), full_page=True)
                    page.close()
        finally:
            browser.close()
    for (by, width), view in views.items():
        scroll_width, inner_width = view["overflow"]
        assert scroll_width <= inner_width == width, (by, width)
        worst = min(view["text"], key=lambda item: item[1])
        assert worst[1] >= 4.5, (by, width, worst)
        assert all(bg < 0.2 for _, _, bg in view["text"]), (by, width)  # drawn on the theme's dark background
    by_tenant, by_model = views["tenant", 1400], views["model", 1400]
    assert by_tenant["series"] == sorted(TENANTS)  # the failed call cost nothing: no spend of its own
    assert sorted(by_tenant["keys"]) == sorted([*TENANTS, "—"])  # it had no tenant tag
    assert by_model["series"] == sorted(MODELS) and sorted(by_model["keys"]) == sorted(MODELS)
    assert by_tenant["charts"][:2] == ["spend-over-time", "latency-p95-over-time"]
    assert "cost-by-tenant" in by_tenant["charts"] and "cost-by-model" not in by_tenant["charts"]
    assert "cost-by-model" in by_model["charts"]
    spend = [c for c in by_tenant["charts"] if c.startswith("cost-by-")]
    assert spend[0] == "cost-by-tenant"  # the breakdown asked for comes first
