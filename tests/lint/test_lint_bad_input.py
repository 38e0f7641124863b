"""Bad input: a clear LG000 (or error line) for each bad file, and the rest of the run unaffected."""

from __future__ import annotations

import os

from conftest import BAD_PY, make_notebook


def test_each_bad_file_gets_a_clear_message(cli, project):
    root = project(
        {
            "syntax.py": "import openai\n\ndef ask(:\n    pass\n",
            "binary.py": b"\x00\x01\x02openai\x00",
            "latin.py": "# no coding line\nname = 'caf\xe9'\nimport openai\n".encode("latin-1"),
            "huge.py": "import openai\n" + "x = 1\n" * 200_000,
            "broken.ipynb": '{"cells": [',
            "empty.ipynb": "",
            "bad.py": BAD_PY,
        }
    )
    os.symlink(root / "missing-target.py", root / "dangling.py")
    result = cli(["lint", ".", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 1
    by_file = {}
    for f in result.json():
        by_file.setdefault(f["file"], []).append(f)
    messages = {name: [f["message"] for f in items if f["code"] == "LG000"] for name, items in by_file.items()}
    assert messages["syntax.py"] == ["syntax error: invalid syntax (not checked)"]
    assert by_file["syntax.py"][0]["line"] == 3
    assert "binary file" in messages["binary.py"][0]
    assert "cannot decode as UTF-8" in messages["latin.py"][0]
    assert "file too large to lint (1.2 MB > max-file-bytes 1.0 MB)" in messages["huge.py"][0]
    assert "invalid notebook: not valid JSON" in messages["broken.ipynb"][0]
    assert "invalid notebook" in messages["empty.ipynb"][0]
    assert "cannot read the file: No such file or directory" in messages["dangling.py"][0]
    assert {f["code"] for f in by_file["bad.py"]} == {"LG102", "LG201", "LG301"}  # the rest still linted


def test_parse_errors_only_for_files_a_rule_could_match(cli, project):
    root = project({"unrelated.py": "def f(:\n", "py2.py": "print 'hello openai'\n"})
    found = [(f["file"], f["code"]) for f in cli(["lint", ".", "--format", "json"], cwd=root).json()]
    assert found == [("py2.py", "LG000")]


def test_coding_declaration_is_honoured(cli, project):
    root = project(
        {"legacy.py": "# -*- coding: latin-1 -*-\nimport openai\nname = 'caf\xe9'\nopenai.OpenAI()\n".encode("latin-1")}
    )
    found = [f["code"] for f in cli(["lint", "legacy.py", "--format", "json"], cwd=root).json()]
    assert found == ["LG201"]


def test_lg000_can_be_ignored(cli, project):
    root = project({"syntax.py": "import openai\ndef f(:\n"})
    assert cli(["lint", ".", "--ignore", "LG000"], cwd=root).code == 0


def test_notebook_with_broken_cells_and_outputs(cli, project):
    text = make_notebook([("code", "import openai\nclient = openai.OpenAI(timeout=5)"), ("code", "for x in (:\n")])
    root = project({"nb.ipynb": text})
    result = cli(["lint", "nb.ipynb", "--format", "json"], cwd=root).json()
    assert [(f["code"], f["cell"], f["line"]) for f in result] == [("LG000", 2, 1)]
