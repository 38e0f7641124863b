"""What the widget and the per-cell footer say, word for word, after known calls against the simulator.

Latency and requests per window count only the calls that reached the provider (a replayed run
served from the cache must not read as a 1 ms provider); the budget is a plain sentence; a rate
limit shows the tokens used in its window; every cell that made calls gets a one-line footer in
a real kernel; the widget's spend sparkline is drawn in a real browser.
"""

from __future__ import annotations

import html
import json
import os
import re

import pytest

import llmguard
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.conftest import FAKE_OPENAI_KEY, openai_client, rows

# gpt-4o-mini on the simulator: "hi", "ho" and "hey" are 8 prompt tokens, and 20 tokens are
# always answered to max_tokens=20: $0.0000132 a call
ONE_CALL_USD = "$0.0000132"
LATENCY = r"latency p50 [\d,]+ ms · p95 [\d,]+ ms"
ELAPSED = r"(\d+ ms|\d\.\d s|\d+ s|\d+ min( \d+ s)?)"


def _ask(sim, content: str, max_tokens: int = 20) -> None:
    openai_client(sim).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], max_tokens=max_tokens, temperature=0
    )


def _lines(details_html: str) -> list[str]:
    return [html.unescape(line) for line in re.findall(r"<div>(.*?)</div>", details_html)]


def test_two_provider_calls_and_a_cache_hit(guard, fresh_sim):
    from llmguard.magics import view as views
    from llmguard.magics.widget import SpendWidget

    guard.configure(budget_usd=0.5)
    _ask(fresh_sim, "hi")
    _ask(fresh_sim, "ho")
    _ask(fresh_sim, "hi")  # answered from the cache
    assert fresh_sim.stats["requests"] == 2
    widget = SpendWidget(llmguard.current)
    widget.refresh()
    assert widget.spend.value == "$0.0000264 spent · $0.0000264 of $0.50 budget used, since set"
    calls, tokens, rates, latency, store = _lines(widget.details.value)
    assert store.startswith("budget shared through local (") and store.endswith("store.sqlite3) · reachable")
    assert calls == "calls 3: 2 to the provider · 1 cache hit ($0.0000132 saved)"
    assert tokens == "tokens 16 in / 40 out"
    assert rates == "RPM 2 · TPM 56 (no limits set)"  # the cache hit is no request to the provider
    assert re.fullmatch(LATENCY + r" \(2 provider calls\) · retries 0 · fallbacks 0 · errors 0", latency), latency
    line = views.one_line(views.collect(guard))
    assert line.startswith(
        "llmguard · $0.0000264 spent · $0.0000264 of $0.50 budget used, since set · 3 calls · 2 to the provider"
        " · 1 cache hit ($0.0000132 saved) · 16 in / 40 out tokens · latency p50 "
    ), line
    assert line.endswith(" (2 provider calls) · 0 retries · 0 fallbacks · 0 errors"), line
    assert '<rect x="0"' in widget.spark.value and "peak $0.0000" in widget.spark.value
    assert FAKE_OPENAI_KEY not in json.dumps([w.get_state() for w in (widget.spend, widget.spark, widget.details)])
    widget.close()


def test_latency_and_rates_leave_out_cache_hits_and_refusals(guard, fresh_sim):
    _ask(fresh_sim, "hi")
    _ask(fresh_sim, "hi")  # a cache hit
    guard.configure(budget_usd=0.00001)
    with pytest.raises(Exception, match="llmguard: session budget"):
        _ask(fresh_sim, "ho", max_tokens=500)  # refused: never sent
    snapshot = guard.metrics.snapshot()
    assert (snapshot["calls"], snapshot["provider_calls"], snapshot["cache_hits"], snapshot["refusals"]) == (3, 1, 1, 1)
    assert (snapshot["latency_calls"], snapshot["rpm"], snapshot["tpm"]) == (1, 1, 28)


def test_the_budget_sentence_counts_since_the_budget_was_set(guard, fresh_sim):
    from llmguard.magics import view as views

    _ask(fresh_sim, "hi")
    guard.configure(budget_usd=0.5)
    _ask(fresh_sim, "ho")
    assert views.spend_text(views.collect(guard)) == "$0.0000264 spent · $0.0000132 of $0.50 budget used, since set"
    assert views.budget_text({"budget": None}) == ""


def test_a_limit_shows_the_tokens_used_in_its_window(guard, fresh_sim):
    from llmguard.magics import view as views

    guard.configure(limits={"gpt-4o-mini": {"rpm": 500, "tpm": 100_000}})
    _ask(fresh_sim, "hi")
    _ask(fresh_sim, "ho")
    _ask(fresh_sim, "hi")  # a cache hit: not a request, no tokens against the limit
    [line] = views.detail_lines(views.collect(guard))[2:3]
    assert line == "gpt-4o-mini: RPM 2/500 · TPM 56/100k · queue 0"  # not the bucket's deficit
    guard.configure(window_s=300, limits={"gpt-4o-mini": {"rpm": 50, "tpm": 15_000}})
    [line] = views.detail_lines(views.collect(guard))[2:3]
    assert line == "gpt-4o-mini, last 5 min: 2/50 requests · 56/15k tokens · queue 0"  # the window is the limit's


def test_spend_series_merges_buckets_and_draws_as_blocks():
    from llmguard.ledger.metrics import SpendSeries
    from llmguard.magics import sparkline

    series = SpendSeries(bars=4, bucket_s=10.0, start=0.0)
    series.add(1.0, now=5.0)
    series.add(2.0, now=15.0)
    assert series.read(now=15.0) == {"bucket_s": 10.0, "values": [1.0, 2.0], "elapsed_s": 15.0, "bars": 4}
    series.add(4.0, now=45.0)  # past 4 buckets of 10 s: neighbours merge into 20 s buckets
    read = series.read(now=45.0)
    assert read == {"bucket_s": 20.0, "values": [3.0, 0.0, 4.0], "elapsed_s": 45.0, "bars": 4}
    assert sparkline.blocks(read) == "▇▁█"
    assert sparkline.text(read) == "spend ▇▁█ over 45 s, a bar per 20 s (peak $4.00)"
    assert sparkline.svg(read).count("<rect") == 2  # the bucket that spent nothing has no bar


def test_money_counts_and_durations_read_plainly():
    from llmguard.money import DASH, duration, or_dash, plural

    assert [plural(1, "call"), plural(2, "call"), plural(0, "call"), plural(1204, "token")] == [
        "1 call",
        "2 calls",
        "0 calls",
        "1,204 tokens",
    ]
    assert plural(1, "retry", "retries") == "1 retry" and plural(3, "retry", "retries") == "3 retries"
    assert [duration(s) for s in (0.34, 2.14, 42.4, 185, 725, 4800)] == [
        "340 ms",
        "2.1 s",
        "42 s",
        "3 min 5 s",
        "12 min",
        "1 h 20 min",
    ]
    assert (or_dash(None), or_dash(""), or_dash("digest"), DASH) == ("—", "—", "digest", "—")


# ---- the per-cell footer in a real kernel ---------------------------------------------------

NOTEBOOK_CELLS = [
    "%load_ext llmguard",
    "from openai import OpenAI\n"
    "client = OpenAI(timeout=30)\n"
    "def ask(content):\n"
    "    client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': content}],"
    " max_tokens=20, temperature=0)\n"
    "ask('hi')\n"
    "ask('ho')",
    "ask('hi')",
    "x = 1",
    "%%llmguard --feature digest\nask('hey')",
    # a worker that carries this cell's tags, and calls only once the next cell lets it
    "import threading, llmguard\n"
    "go, tags = threading.Event(), llmguard.session_tags()\n"
    "def later():\n"
    "    go.wait()\n"
    "    with llmguard.tag(**tags):\n"
    "        ask('yo')\n"
    "worker = threading.Thread(target=later)\n"
    "worker.start()",
    "go.set()\nworker.join()",
]


def _footers(cell) -> list[str]:
    return [
        output.data["text/plain"]
        for output in cell.outputs
        if output.output_type == "display_data" and output.data.get("text/plain", "").startswith("llmguard · this cell")
    ]


def test_each_cell_that_made_calls_gets_a_footer_in_a_real_kernel(fresh_sim, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in NOTEBOOK_CELLS])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_"))}
    env.update(
        LLMGUARD_HOME=str(tmp_path / "home"), OPENAI_BASE_URL=fresh_sim.openai_base_url, OPENAI_API_KEY=FAKE_OPENAI_KEY
    )
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute(env=env, cwd=str(tmp_path))
    load, two_calls, cached, no_calls, scoped, started, waited = notebook.cells
    assert _footers(load) == [] and _footers(no_calls) == [] and _footers(started) == []
    [footer] = _footers(two_calls)
    assert re.fullmatch(rf"llmguard · this cell: 2 calls · \$0\.0000264 · 56 tokens · {ELAPSED}", footer), footer
    [footer] = _footers(cached)
    assert re.fullmatch(rf"llmguard · this cell: 1 call · \$0\.00 · 0 tokens · 1 cache hit · {ELAPSED}", footer), footer
    [summary] = _footers(scoped)  # %%llmguard prints its own line, in the same format: no second footer
    assert re.fullmatch(rf"llmguard · this cell: 1 call · \$0\.0000132 · 28 tokens · {ELAPSED}", summary), summary
    [shown] = [o.data["text/html"] for o in two_calls.outputs if "text/html" in o.get("data", {})]
    assert 'class="llmguard-footer"' in shown and "2 calls · $0.0000264 · 56 tokens" in shown
    assert FAKE_OPENAI_KEY not in json.dumps([cell.outputs for cell in notebook.cells])
    [footer] = _footers(waited)  # the worker's call is the earlier cell's, named apart
    assert re.fullmatch(
        rf"llmguard · this cell: no calls · {ELAPSED} · meanwhile 1 call of other cells finished \(\$0\.0000132\)",
        footer,
    ), footer
    assert fresh_sim.stats["requests"] == 4


# ---- in a real browser ------------------------------------------------------------------------


def test_the_widget_and_a_footer_read_right_in_chromium(guard, fresh_sim, tmp_path):
    require_browser("the widget text browser test")
    from playwright.sync_api import sync_playwright

    from llmguard.ledger.metrics import Tally
    from llmguard.magics.cell_footer import footer_text
    from llmguard.magics.output import note_html
    from llmguard.magics.widget import SpendWidget

    guard.configure(budget_usd=0.5)
    _ask(fresh_sim, "hi")
    _ask(fresh_sim, "ho")
    _ask(fresh_sim, "hi")
    widget = SpendWidget(llmguard.current)
    widget.refresh()
    footer = footer_text(Tally(calls=3, cost_usd=0.00041, input_tokens=1000, output_tokens=204, cache_hits=1), 2.1)
    page_html = (
        "<!doctype html><meta charset='utf-8'><body style='font-family:sans-serif'>"
        f"<div id='header'><span id='spend'>{widget.spend.value}</span> <span id='spark'>{widget.spark.value}</span></div>"
        f"<div id='details'>{widget.details.value}</div><div id='footer'>{note_html(footer)}</div></body>"
    )
    widget.close()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 300})
            page.set_content(page_html)
            assert page.inner_text("#spend") == "$0.0000264 spent · $0.0000264 of $0.50 budget used, since set"
            details = page.inner_text("#details").splitlines()
            assert details[0] == "calls 3: 2 to the provider · 1 cache hit ($0.0000132 saved)"
            assert re.fullmatch(LATENCY + r" \(2 provider calls\) · retries 0 · fallbacks 0 · errors 0", details[3])
            assert (
                page.inner_text("#footer")
                == "llmguard · this cell: 3 calls · $0.00041 · 1,204 tokens · 1 cache hit · 2.1 s"
            )
            box = page.locator("#spark svg").bounding_box()
            rects = page.locator("#spark svg rect")
            heights = [(rects.nth(i).bounding_box() or {"height": 0})["height"] for i in range(rects.count())]
            assert box is not None and (box["width"], box["height"]) == (150, 16)  # room for 30 bars
            assert max(heights) == 15  # the busiest bucket is drawn full height
            assert page.locator("#spark svg title").text_content().startswith("spend over ")
            page.screenshot(path=str(tmp_path / "widget-text.png"))
        finally:
            browser.close()
    assert (tmp_path / "widget-text.png").stat().st_size > 1000


def test_replayed_samples_are_not_provider_calls_and_the_footer_says_how_to_draw_again(home, fresh_sim):
    """A replayed sampled call (decision="replay") was served from the cache: counting it as a
    provider call put its 1 ms into the provider's p50 and its tokens into RPM/TPM."""
    guard = llmguard.install(home=str(home), cache_sampled=True)  # sampled calls replay, as in a notebook
    client = openai_client(fresh_sim)
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20)
    assert [r["decision"] for r in rows(guard)] == ["process", "replay"]
    snapshot = guard.metrics.snapshot()
    assert (snapshot["calls"], snapshot["provider_calls"], snapshot["cache_hits"], snapshot["replays"]) == (2, 1, 1, 1)
    assert (snapshot["latency_calls"], snapshot["rpm"]) == (1, 1)
    from llmguard.ledger.metrics import Tally
    from llmguard.magics import view as views
    from llmguard.magics.cell_footer import footer_text

    assert views.calls_text(snapshot).startswith(
        "calls 2: 1 to the provider · 0 cache hits · 1 replayed ($0) · `%llmguard fresh` for a new sample"
    ), views.calls_text(snapshot)
    footer = footer_text(Tally(calls=3, cost_usd=0.0, input_tokens=30, output_tokens=12, cache_hits=3, replays=3), 0.2)
    assert footer == (
        "llmguard · this cell: 3 calls · $0.00 · 42 tokens · 3 replayed ($0) · `%llmguard fresh` for a new sample"
        " · 200 ms"
    )


def test_the_widget_says_where_a_shared_budget_keeps_its_books(home, fresh_sim):
    from llmguard.magics.widget import SpendWidget

    llmguard.install(home=str(home), budget_usd=0.5)  # the default store: every kernel on this home
    _ask(fresh_sim, "hi")
    widget = SpendWidget(llmguard.current)
    widget.refresh()
    lines = _lines(widget.details.value)
    widget.close()
    assert lines[-1] == f"budget shared through local ({home / 'store.sqlite3'}) · reachable", lines
