"""The pre-commit hook, run for real through `pre-commit try-repo` on a small sample repository.

pre-commit installs llmguard from this checkout into its own virtualenv (pip reaches PyPI for the
dependencies) and runs the `llmguard` console script, which dispatches `lint` to llmguard.lint.cli.
try-repo only sees committed and modified tracked files, so the test snapshots the working tree
(tracked and untracked, minus .gitignored files) into a throwaway git repository first.
When pre-commit cannot build that environment (no network, no pip), the test is skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BAD_PY, CLEAN_PY, make_notebook

REPO = Path(__file__).resolve().parents[2]


def test_hook_definition():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "llmguard-lint")
    assert hook["entry"] == "llmguard lint" and hook["language"] == "python"
    assert set(hook["types_or"]) == {"python", "jupyter"}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )


def _snapshot(target: Path) -> Path:
    listing = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listing):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "snapshot")
    return target


@pytest.mark.timeout(900)
def test_try_repo_runs_the_hook(tmp_path):
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    if not Path(pre_commit).exists():
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "bad.py").write_text(BAD_PY)
    (sample / "clean.py").write_text(CLEAN_PY)
    (sample / "nb.ipynb").write_text(make_notebook([("code", "from anthropic import Anthropic\nllm = Anthropic()")]))
    _git(sample, "init", "-q")
    _git(sample, "add", ".")
    snapshot = _snapshot(tmp_path / "llmguard-snapshot")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": os.environ.get("LLMGUARD_TEST_PRE_COMMIT_HOME", str(tmp_path / "pc-home")),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [pre_commit, "try-repo", str(snapshot), "llmguard-lint", "--all-files", "--color", "never", "--verbose"],
        cwd=sample,
        env=env,
        capture_output=True,
        text=True,
        timeout=880,
    )
    output = proc.stdout + proc.stderr
    if "An unexpected error has occurred" in output or ("CalledProcessError" in output and "pip" in output):
        pytest.skip(f"pre-commit could not build the hook's environment here:\n{output[-2000:]}")
    assert proc.returncode == 1, output
    assert "llmguard lint" in output and "Failed" in output
    assert "bad.py:4:10: LG201" in output
    assert "nb.ipynb:cell 1:2:7: LG201" in output
    assert "clean.py" not in output.split("- hook id: llmguard-lint", 1)[-1].replace("(2 checked)", "")
