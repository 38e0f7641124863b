"""Fixtures for the linter's tests: a private LLMGUARD_HOME (the lint cache), the CLI run in-process,
sample projects written to a temp dir."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
GOOD_CORPUS = HERE / "corpus" / "good"
SARIF_SCHEMA = HERE / "sarif-schema-2.1.0.json"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):  # noqa: ANN201
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def lint_home(tmp_path_factory, monkeypatch):
    """Every test gets its own lint cache (LLMGUARD_HOME/lint-cache)."""
    home = tmp_path_factory.mktemp("llmguard-home")
    monkeypatch.setenv("LLMGUARD_HOME", str(home))
    return home


@pytest.fixture
def cli(monkeypatch):
    """Run `python -m llmguard.lint ...` in-process: cli(["lint", "."], cwd=path) -> CliResult."""
    from llmguard.lint.__main__ import main

    def run(argv: list[str], cwd: Path | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def project(tmp_path):
    """Write files into a temp project: project({"a.py": "...", "pyproject.toml": "..."}) -> root."""

    def write(files: dict[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return write


def make_notebook(cells: list[tuple[str, str]], language: str = "python") -> str:
    """nbformat 4 JSON with (cell_type, source) cells, written the way Jupyter writes it."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": language}
    nb.metadata["language_info"] = {"name": language}
    makers = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    nb.cells = [makers[kind](source) for kind, source in cells]
    return nbformat.writes(nb) + "\n"


BAD_PY = """\
import openai
from tenacity import retry, wait_exponential

client = openai.OpenAI()


@retry(wait=wait_exponential())
def ask(msgs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
"""
CLEAN_PY = """\
import openai

client = openai.OpenAI(timeout=30)


def ask(msgs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=100)
"""


@pytest.fixture
def bad_project(project):
    return project({"app/bad.py": BAD_PY, "app/clean.py": CLEAN_PY})
