"""The result cache: a warm run reads nothing it does not need; any change invalidates exactly its file."""

from __future__ import annotations

import os
import stat

from conftest import BAD_PY

from llmguard.lint import LintConfig, lint_paths
from llmguard.lint.cache import cache_dir
from llmguard.lint.config import config_from_table


def test_warm_run_hits_the_cache_and_gives_the_same_findings(bad_project, lint_home, monkeypatch):
    monkeypatch.chdir(bad_project)
    config = LintConfig(root=bad_project)
    cold = lint_paths(["app"], config)
    assert cold.cached == 0 and cold.parsed == 2
    warm = lint_paths(["app"], config)
    assert warm.cached == 2 and warm.parsed == 0
    assert warm.findings == cold.findings
    folder = cache_dir()
    assert folder == lint_home / "lint-cache"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.glob("*.pickle"))


def test_content_change_config_change_and_touch(bad_project, monkeypatch):
    monkeypatch.chdir(bad_project)
    config = LintConfig(root=bad_project)
    lint_paths(["app"], config)
    bad = bad_project / "app" / "bad.py"
    bad.write_text(BAD_PY.replace("openai.OpenAI()", "openai.OpenAI(timeout=5)"))
    changed = lint_paths(["app"], config)
    assert changed.parsed == 1 and "LG201" not in {f.code for f in changed.findings}
    os.utime(bad, ns=(1, 1))  # touched, same content: the content hash decides
    touched = lint_paths(["app"], config)
    assert touched.parsed == 0 and touched.cached == 2
    other = lint_paths(["app"], config_from_table({"max-output-tokens": 100}, root=bad_project))
    assert other.parsed == 2  # another config never reuses these results


def test_no_cache_neither_reads_nor_writes(bad_project, monkeypatch):
    monkeypatch.chdir(bad_project)
    config = LintConfig(root=bad_project)
    result = lint_paths(["app"], config, use_cache=False)
    assert result.parsed == 2
    assert not cache_dir().exists()


def test_default_location_is_dot_llmguard(bad_project, monkeypatch):
    monkeypatch.delenv("LLMGUARD_HOME")
    monkeypatch.chdir(bad_project)
    lint_paths(["app"], LintConfig(root=bad_project))
    folder = bad_project / ".llmguard" / "lint-cache"
    assert folder.is_dir() and (folder / ".gitignore").read_text().strip().endswith("*")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_template_dependency_invalidates(project, monkeypatch):
    root = project(
        {
            "prompts/system.txt": "short",
            "app.py": "SYSTEM_PROMPT = open('prompts/system.txt').read()\nfrom openai import OpenAI\n",
        }
    )
    monkeypatch.chdir(root)
    config = config_from_table({"select": ["LG403"]}, root=root)
    assert lint_paths(["app.py"], config).findings == []
    (root / "prompts" / "system.txt").write_text("A long policy sentence for the model. " * 600)
    again = lint_paths(["app.py"], config)
    assert [f.code for f in again.findings] == ["LG403"]


def test_parallel_workers_give_the_same_results(project, monkeypatch):
    files = {f"pkg/m{i}.py": BAD_PY for i in range(40)}
    files.update({f"pkg/plain{i}.py": "x = 1\n" for i in range(10)})
    root = project(files)
    monkeypatch.chdir(root)
    config = LintConfig(root=root)
    serial = lint_paths(["pkg"], config, use_cache=False, jobs=1)
    parallel = lint_paths(["pkg"], config, use_cache=False, jobs=2)
    assert parallel.findings == serial.findings
    assert len(serial.findings) == 120
