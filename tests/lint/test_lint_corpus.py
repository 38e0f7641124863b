"""A corpus of realistic, correct LLM code produces zero findings; a bad file produces the expected ones."""

from __future__ import annotations

from conftest import GOOD_CORPUS

from llmguard.lint import LintConfig, lint_paths


def test_correct_corpus_has_zero_findings():
    result = lint_paths([str(GOOD_CORPUS)], LintConfig(root=GOOD_CORPUS), use_cache=False, jobs=1)
    assert result.files >= 8
    assert result.parsed >= 7, "the corpus must exercise the rules, not be skipped by the prefilter"
    assert [f"{f.path}:{f.line} {f.code} {f.message}" for f in result.findings] == []


def test_correct_corpus_cli_exits_zero(cli):
    result = cli(["lint", GOOD_CORPUS, "--no-cache"])
    assert result.code == 0, result.out
    assert "All checks passed!" in result.out


def test_bad_file_findings(cli, bad_project):
    result = cli(["lint", "app", "--format", "json", "--no-cache"], cwd=bad_project)
    assert result.code == 1
    found = sorted((f["file"], f["line"], f["code"]) for f in result.json())
    assert found == [("app/bad.py", 4, "LG201"), ("app/bad.py", 7, "LG102"), ("app/bad.py", 9, "LG301")]
