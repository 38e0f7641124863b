"""The CLI: formats, statistics, exit codes, --select/--ignore, suppressions, `rule`, `python -m`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import BAD_PY


def test_text_output_full_and_concise(cli, bad_project):
    full = cli(["lint", "app", "--no-cache"], cwd=bad_project)
    assert full.code == 1
    assert "app/bad.py:4:10: LG201 [*] OpenAI client without timeout=" in full.out
    assert "client = openai.OpenAI()" in full.out and "^^^^" in full.out
    assert "fix: add timeout=60" in full.out
    assert "Found 3 findings in 1 file (2 checked)." in full.out
    concise = cli(["lint", "app", "--concise", "--no-cache"], cwd=bad_project)
    lines = concise.out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("app/bad.py:4:10: LG201")


def test_json_fields(cli, bad_project):
    result = cli(["lint", "app/bad.py", "--format", "json"], cwd=bad_project)
    first = result.json()[0]
    assert set(first) == {
        "code",
        "name",
        "message",
        "file",
        "cell",
        "line",
        "column",
        "end_line",
        "end_column",
        "confidence",
        "fix",
    }
    assert first["fix"] == {"description": "add timeout=60", "applicability": "safe"}
    assert (first["line"], first["column"], first["end_line"], first["end_column"]) == (4, 10, 4, 25)


def test_github_annotations(cli, bad_project):
    result = cli(["lint", "app", "--format", "github"], cwd=bad_project)
    first = result.out.splitlines()[0]
    assert first.startswith("::error title=llmguard LG201 client-without-timeout,file=app/bad.py,line=4,col=10,")
    assert first.endswith("(seconds or httpx.Timeout)")


def test_statistics_and_exit_zero(cli, bad_project):
    result = cli(["lint", "app", "--statistics", "--exit-zero"], cwd=bad_project)
    assert result.code == 0
    assert "1  LG102 [*] tenacity-without-stop" in result.out
    stats = cli(["lint", "app", "--statistics", "--format", "json"], cwd=bad_project).json()
    assert {s["code"]: s["count"] for s in stats} == {"LG102": 1, "LG201": 1, "LG301": 1}


def test_select_and_ignore(cli, bad_project):
    only = cli(["lint", "app", "--select", "LG2", "--format", "json"], cwd=bad_project).json()
    assert {f["code"] for f in only} == {"LG201"}
    rest = cli(["lint", "app", "--ignore", "LG201,LG102", "--format", "json"], cwd=bad_project).json()
    assert {f["code"] for f in rest} == {"LG301"}
    clean = cli(["lint", "app/clean.py"], cwd=bad_project)
    assert clean.code == 0


def test_usage_errors_exit_2(cli, bad_project):
    assert cli(["lint", "--select", "LG999"], cwd=bad_project).code == 2
    assert cli(["lint", "--format", "xml"], cwd=bad_project).code == 2
    assert cli(["lint", "--jobs", "-1"], cwd=bad_project).code == 2
    assert cli(["lint", "--costs", "--fix"], cwd=bad_project).code == 2
    missing = cli(["lint", "app", "does-not-exist.py"], cwd=bad_project)
    assert missing.code == 2
    assert "does-not-exist.py: no such file or directory" in missing.err
    assert "LG201" in missing.out  # the rest of the run is unaffected


def test_suppressions(cli, project):
    root = project(
        {
            "s.py": """
        import openai
        a = openai.OpenAI()  # noqa: LG201
        b = openai.OpenAI()  # llmguard: ignore[LG201]
        c = openai.OpenAI()  # noqa
        d = openai.OpenAI()  # noqa: LG301
        e = openai.OpenAI(timeout=30)
        e.chat.completions.create(  # llmguard: ignore[LG302]
            model="gpt-4o-mini",
            messages=[],
            max_tokens=None,
        )
        e.chat.completions.create(  # noqa: LG301
            model="gpt-4o-mini",
            messages=[],
        )
    """
        }
    )
    result = cli(["lint", "s.py", "--format", "json"], cwd=root)
    assert [(f["line"], f["code"]) for f in result.json()] == [(5, "LG201")]


def test_ignore_file_comment(cli, project):
    root = project({"gen.py": "# llmguard: ignore-file\n" + BAD_PY})
    assert cli(["lint", "gen.py"], cwd=root).code == 0


def test_rule_command(cli):
    doc = cli(["rule", "LG201"])
    assert doc.code == 0
    assert doc.out.startswith("# LG201 client-without-timeout")
    assert "## Why is this bad" in doc.out
    assert cli(["rule", "client-without-timeout"]).out == doc.out
    listing = cli(["rule", "--all"])
    assert listing.code == 0 and listing.out.count("\nLG") >= 16
    as_json = json.loads(cli(["rule", "--all", "--format", "json"]).out)
    assert [r["code"] for r in as_json][:2] == ["LG000", "LG101"]
    unknown = cli(["rule", "LG2O1"])
    assert unknown.code == 2 and "did you mean LG201" in unknown.err
    assert cli(["rule"]).code == 2


def test_python_dash_m_entry_point(bad_project):
    proc = subprocess.run(
        [sys.executable, "-m", "llmguard.lint", "lint", "app", "--concise", "--no-cache"],
        cwd=bad_project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "LG201" in proc.stdout


def test_main_cli_dispatches_to_the_linter(bad_project):
    """`llmguard lint` (llmguard/cli.py) calls add_lint_arguments/run_lint."""
    cli_module = pytest.importorskip("llmguard.cli")
    if not hasattr(cli_module, "main"):
        pytest.skip("llmguard.cli has no main() yet")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, llmguard.cli as c; sys.exit(c.main(sys.argv[1:]))",
            "lint",
            "app",
            "--concise",
            "--no-cache",
        ],
        cwd=bad_project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "LG201" in proc.stdout


def test_output_file(cli, bad_project):
    result = cli(["lint", "app", "--format", "json", "-o", "report.json"], cwd=bad_project)
    assert result.code == 1 and result.out == ""
    assert len(json.loads((bad_project / "report.json").read_text())) == 3
