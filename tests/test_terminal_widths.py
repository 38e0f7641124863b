"""At 60, 80 and 120 columns no number or name is cut short: `llmguard demo`, `report` (the default
view and `--full`) and `check`, run as a person runs them (the real CLI in a subprocess with COLUMNS
set) over a ledger the demo filled with real SDK calls against the simulated provider. A table that
does not fit leaves out columns, and says which; every cell it shows is whole. The demo says what it
does before the SDKs load, and its progress bar shows the cost and the errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmguard.money import usd

WIDTHS = (60, 80, 120)
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "claude-3-5-haiku-latest")
COST_COLUMNS = ("calls", "input tok", "cached", "output tok", "cost", "p50 ms", "p95 ms", "errors")
# A whole figure: a count (with its share), a share, dollars, milliseconds, a latency triple, or "-"
# (optionally "≈ "-marked).
WHOLE = re.compile(r"(≈ )?(-|—|\$?[\d,]+(\.\d+)?( \(\d+%\))?|\d+%|[\d,]+ / [\d,]+ / [\d,]+)?")


def _env(home: Path, width: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "LINES")}
    return {**env, "COLUMNS": str(width), "LLMGUARD_HOME": str(home), "NO_COLOR": "1"}


def llmguard(home: Path, width: int, *args: str, importtime: bool = False) -> tuple[int, str]:
    """`llmguard ARGS` at this width: its exit code and its output (stderr merged, as a terminal shows it)."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "llmguard.cli", *args]
    done = subprocess.run(
        command,
        env=_env(home, width),
        cwd=home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        timeout=600,
    )
    return done.returncode, done.stdout


def as_json(home: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", *args, "--format", "json"],
        env=_env(home, 200),
        cwd=home.parent,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> tuple[Path, dict[int, tuple[str, dict]]]:
    """One demo per width into one ledger: what each printed (SDK import times included), and its run's report."""
    home = tmp_path_factory.mktemp("widths") / "home"
    runs = {}
    for width in WIDTHS:
        code, out = llmguard(home, width, "demo", importtime=True)
        assert code == 0, out
        runs[width] = (out, as_json(home, "report", "--last-run"))
    return home, runs


def shown(text: str) -> list[str]:
    """The output without the interpreter's import-time lines."""
    return [line for line in text.splitlines() if not line.startswith("import time:")]


def table_rows(lines: list[str]) -> dict[str, list[str]]:
    """Each table row's cells, by its first cell."""
    rows = {}
    for line in lines:
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def left_out(lines: list[str]) -> list[str]:
    """The columns the (one) table says it left out at this width."""
    text = "\n".join(lines)
    found = re.search(r"^left out at this width: (.*(?:\n  .*)*)", text, re.MULTILINE)
    return [] if found is None else [n.strip() for n in " ".join(found.group(1).split()).split(",")]


def expected_cells(row: dict) -> dict[str, str]:
    return {
        "calls": f"{row['calls']:,}",
        "input tok": f"{row['input_tokens']:,}",
        "cached": f"{row['cached_input_tokens']:,}",
        "output tok": f"{row['output_tokens']:,}",
        "cost": usd(row["cost_usd"]),
        "p50 ms": f"{row['p50_ms']:,.1f}",
        "p95 ms": f"{row['p95_ms']:,.1f}",
        "errors": f"{row['errors']:,}",
    }


def assert_cost_table(lines: list[str], report: dict, width: int) -> None:
    """Every model's row holds exactly its ledger figures, whole, minus the columns it names as left out."""
    assert not any("…" in line for line in lines), "\n".join(lines)
    gone = left_out(lines)
    assert set(gone) <= set(COST_COLUMNS) and not {"calls", "cost", "errors"} & set(gone), gone
    if width == 120:
        assert gone == []
    rows = table_rows(lines)
    assert {r["model"] for r in report["rows"]} == set(MODELS)
    for row in report["rows"]:
        figures = expected_cells(row)
        assert rows[row["model"]] == [v for k, v in figures.items() if k not in gone], (width, row["model"])
    total = report["total"]
    assert rows["total"][0] == f"{total['calls']:,}" and usd(total["cost_usd"]) in rows["total"]


def test_the_demo_says_what_it_does_before_the_sdks_load(demos):
    _, runs = demos
    out, _ = runs[60]
    first_sdk_module = re.search(r"^import time:.*\|\s+(openai|anthropic)(\.\S+)?$", out, re.MULTILINE)
    assert first_sdk_module is not None
    announced = out.index("llmguard demo: 36 calls through the openai SDK and 6 through")
    assert announced < first_sdk_module.start()
    assert shown(out)[0].startswith("llmguard demo: 36 calls through the openai SDK and 6 through")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_progress_bar_shows_the_cost_and_the_errors(demos, width):
    _, runs = demos
    out, report = runs[width]
    total = report["total"]
    assert total["calls"] == 42 and total["errors"] == 0 and total["refusals"] == 0
    bar = [line for line in shown(out) if line.startswith("calls ")]
    assert len(bar) == 1 and "…" not in bar[0], bar
    cached = f", {total['cache_hits']:,} cached" if total["cache_hits"] else ""
    spent = re.escape(f"{usd(total['cost_usd'])} spent{cached}")
    assert re.fullmatch(rf"calls ━+ 42/42 {spent} 0 errors \d+:\d\d:\d\d", bar[0]), bar[0]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_cost_table_keeps_every_number_and_model_name_whole(demos, width):
    _, runs = demos
    out, report = runs[width]
    lines = shown(out)
    assert_cost_table(lines, report, width)
    assert f"the provider billed {usd(report['total']['cost_usd'])};" in out
    assert "the ledger says" in out and "(the same)" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_the_default_report_is_the_cost_table_a_reliability_line_and_the_alerts(demos, width):
    home, _ = demos
    code, out = llmguard(home, width, "report")
    assert code == 0
    lines = out.splitlines()
    assert_cost_table(lines, as_json(home, "report"), width)
    assert "No alerts" in out and "reliability: 0 retried · 0 timeouts · 0 provider 429s" in out
    assert "--full adds per call and cache" in " ".join(out.split())
    assert sum(line.startswith("┏") for line in lines) == 1  # one table
    assert "tok/call" not in out and "ttft" not in out and "spend per" not in out
    assert len(lines) < 30


@pytest.mark.parametrize("width", WIDTHS)
def test_the_full_report_keeps_every_number_and_name_whole(demos, width):
    home, _ = demos
    code, out = llmguard(home, width, "report", "--full")
    assert code == 0 and "…" not in out
    for title in ("cost by model", "per call and cache", "reliability", "latency ms", "top cost drivers", "spend per"):
        assert title in out
    names = {*MODELS, "total", "summary", "question", "classify", "assistant", "acme", "globex"}
    model_rows = [line for line in out.splitlines() if line.startswith("│ ")]
    for model in MODELS:  # the cost, per call, reliability and latency tables, and the drivers
        assert sum(1 for line in model_rows if re.search(rf"│ {re.escape(model)} +│", line)) >= 4, model
    for line in model_rows:
        for cell in [c.strip() for c in line.strip().strip("│").split("│")]:
            assert cell in names or WHOLE.fullmatch(cell), (width, cell, line)


@pytest.mark.parametrize("width", WIDTHS)
def test_check_puts_each_whole_fix_under_its_row(demos, width):
    home, _ = demos
    project = home.parent / "project"
    project.mkdir(exist_ok=True)
    code, out = llmguard(home, width, "check", str(project), "--home", str(home))
    assert code == 1 and "…" not in out
    items = as_json(home, "check", str(project), "--home", str(home))["items"]
    flat = " ".join(out.split())
    at = 0
    for item in items:  # in order: the check, why, then its fix
        at = flat.index(" ".join(item["title"].split()), at)
        at = flat.index(" ".join(item["reason"].split()), at)
        if item["fix"]:
            at = flat.index("fix " + " ".join(item["fix"].split()), at)
    [limits] = [i for i in items if i["number"] == 1]
    assert limits["status"] == "fail"
    snippet = re.search(r'"[^"]+" = \{rpm = 500, tpm = 200000\}', limits["fix"])
    assert snippet is not None and snippet.group() == '"gpt-4o-mini" = {rpm = 500, tpm = 200000}'
    assert any(snippet.group() in line for line in out.splitlines())  # on one line, to paste
    failed = sum(i["status"] == "fail" for i in items)
    assert "[tool.llmguard.limits]" in out and f"{failed} check(s) failed" in out
