"""Notebooks: findings point at the right cell and line; IPython syntax never causes errors."""

from __future__ import annotations

import json

from conftest import make_notebook

from llmguard.lint import lint_notebook_source
from llmguard.lint.notebooks import MAGIC_PLACEHOLDER, join, load_notebook, neutralise

CELLS = [
    ("markdown", "# Title\nSome text."),
    ("code", "%pip install openai\n%load_ext autoreload\nfrom openai import OpenAI\nclient = OpenAI()"),
    ("raw", "raw text"),
    ("code", "%%bash\necho 'this is not python ('"),
    ("markdown", "More text"),
    (
        "code",
        "files = !ls\nlen?\nif True:\n    !echo hi\nx = 1\n"
        "r = client.chat.completions.create(model='gpt-4o-mini', messages=[], timeout=5)",
    ),
    ("code", "reply = await client.responses.create(model='gpt-4o', input='hi', max_output_tokens=10)"),
]


def test_findings_point_at_cell_and_line():
    findings = lint_notebook_source(make_notebook(CELLS), "nb.ipynb")
    found = [(f.code, f.cell, f.line, f.column) for f in findings]
    # cells are numbered among all cells (markdown and raw count), 1-based; lines are 1-based in the cell
    assert found == [("LG201", 2, 4, 10), ("LG301", 6, 6, 5)]


def test_magics_are_neutralised_without_moving_lines():
    lines, replaced = neutralise("%env A=1\nx = !ls\nif x:\n    %env A=1\nlen?\ny = '%not magic'\n")
    assert lines[0] == MAGIC_PLACEHOLDER and lines[1] == MAGIC_PLACEHOLDER
    assert lines[3] == "    " + MAGIC_PLACEHOLDER and lines[4] == MAGIC_PLACEHOLDER
    assert lines[5] == "y = '%not magic'"
    assert sorted(replaced) == [0, 1, 3, 4]
    lines, _ = neutralise("%%writefile x.py\nimport (\n")
    assert lines == ["", ""]


def test_python_run_by_time_and_capture_magics_is_linted():
    # issue 12: calls inside %%capture / %%time cells and after %time / %timeit were not seen
    cells = [
        ("code", "from openai import OpenAI\nclient = OpenAI(timeout=5)"),
        ("code", "%%capture out\nr = client.chat.completions.create(model='gpt-4o', messages=[])"),
        ("code", "%%time\nr = client.chat.completions.create(model='gpt-4o', messages=[])"),
        ("code", "%time r = client.chat.completions.create(model='gpt-4o', messages=[])"),
        (
            "code",
            "for i in range(2):\n    %timeit -n 1 -r 1 client.chat.completions.create(model='gpt-4o', messages=[])",
        ),
        ("code", "%%bash\nclient.chat.completions.create(model='gpt-4o', messages=[])"),
    ]
    found = [(f.code, f.cell, f.line, f.column) for f in lint_notebook_source(make_notebook(cells))]
    lg301 = [row for row in found if row[0] == "LG301"]
    # the column is the call's column in the cell as written: `%time ` is 6 characters wide
    assert lg301 == [("LG301", 2, 2, 5), ("LG301", 3, 2, 5), ("LG301", 4, 1, 11), ("LG301", 5, 2, 23)]
    lines, replaced = neutralise("%time f()\n%timeit -n 10 g()\n%time\n")
    assert lines == ["if 1: f()", "if 1:         g()", MAGIC_PLACEHOLDER]
    assert replaced == {2: "%time"}
    assert neutralise("%%time\nx = 1\n")[0] == [MAGIC_PLACEHOLDER, "x = 1"]


def test_magic_inside_a_string_is_left_alone():
    lines, replaced = neutralise('PROMPT = """\n!important: be brief\n%s\n"""\n')
    assert replaced == {}
    assert lines[1] == "!important: be brief"


def test_row_map_and_file_lines():
    text = make_notebook(CELLS)
    joined = join(load_notebook(text), text)
    assert joined.rows[0] == (2, 1)
    assert joined.locate(5) == (4, 1)
    file_lines = text.splitlines()
    line = joined.file_line(6, 6)
    assert "client.chat.completions.create" in file_lines[line - 1]


def test_syntax_error_in_one_cell_is_reported_and_the_rest_is_linted():
    cells = [
        ("code", "from openai import OpenAI\nclient = OpenAI()"),
        ("code", "def broken(:\n    pass"),
        ("code", "client.responses.create(model='m', input='x')"),
    ]
    found = [(f.code, f.cell, f.line) for f in lint_notebook_source(make_notebook(cells))]
    assert ("LG000", 2, 1) in found
    assert ("LG201", 1, 2) in found and ("LG301", 3, 1) in found


def test_invalid_and_foreign_notebooks():
    assert [f.code for f in lint_notebook_source("{not json")] == ["LG000"]
    assert "not valid JSON" in lint_notebook_source("{not json")[0].message
    old = json.dumps({"nbformat": 3, "worksheets": []})
    assert "format 3" in lint_notebook_source(old)[0].message
    r_notebook = make_notebook([("code", "library(openai)\nOpenAI()")], language="R")
    assert lint_notebook_source(r_notebook) == []
