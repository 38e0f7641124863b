"""Property-based fuzzing of the linter (issue 12, "Robustness"): whatever the input, linting returns;
it never raises, and a file the linter needed to parse was either parsed or got an LG000.

Inputs: generated valid modules (LLM calls wrapped in nesting, odd characters in strings, deep but
legal expressions), real files from tests/lint/corpus and llmguard/ itself mutated and truncated,
and notebooks built from them. Bounded by max_examples and a per-example deadline.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import HERE, make_notebook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmguard
from llmguard.lint.config import LintConfig
from llmguard.lint.engine import Engine
from llmguard.lint.findings import PARSE_ERROR
from llmguard.lint.rules import all_codes
from llmguard.lint.suppress import file_ignored

ENGINE = Engine(LintConfig())
CODES = set(all_codes())
FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MANY = settings(FUZZ, max_examples=150)  # mutated files: mostly quick to lint


def _real_files() -> list[tuple[str, bytes]]:
    roots = [HERE / "corpus", Path(llmguard.__file__).parent]
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".ipynb") and "__pycache__" not in path.parts:
                try:
                    data = path.read_bytes()
                except OSError:  # other work in the tree may move files meanwhile
                    continue
                if 0 < len(data) <= 16_000:
                    found.append((path.name, data))
    return found


REAL = _real_files()


def _check(data: bytes, path: str, kind: str) -> None:
    """The properties every input must have."""
    result = ENGINE.lint_bytes(data, path, kind)  # must not raise
    lines = data.count(b"\n") + data.count(b"\r") + 1  # an upper bound (a lone \r is a line break too)
    codes = [f.code for f in result.findings]
    for f in result.findings:
        assert f.code in CODES and f.path == path
        assert f.line >= 1 and f.column >= 1 and (f.end_line, f.end_column) >= (f.line, f.column)
        assert "internal error" not in f.message, f.message
        if kind == "python":
            assert f.cell is None and f.line <= lines
    assert getattr(result, "internal_errors", []) == []
    text = data.decode("utf-8", errors="replace")
    if kind == "python" and ENGINE.candidates(text) and not file_ignored(text):
        assert result.parsed or PARSE_ERROR in codes, "neither linted nor reported"


# -- generated valid modules -----------------------------------------------------------------------
ODD = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\t", "é", "💥", "\\n", "\\x00", "\\\\", "{", "}", "%s"]


def _string(draw) -> str:  # noqa: ANN001
    body = "".join(draw(st.lists(st.sampled_from(["a", " ", *ODD]), max_size=12)))
    quote = draw(st.sampled_from(["'", '"', "'''", '"""']))
    prefix = draw(st.sampled_from(["", "r", "b", "f", "rb"]))
    if "b" in prefix:
        body = "".join(c if c.isascii() else "".join(f"\\x{b:02x}" for b in c.encode()) for c in body)
    if "f" in prefix:
        body = body.replace("{", "{{").replace("}", "}}")
    if "r" in prefix:
        body = body.rstrip("\\")
    if len(quote) == 1:
        body = body.replace(quote, "")
    pieces = draw(st.integers(1, 3))
    return " ".join(f"{prefix}{quote}{body}{quote}" for _ in range(pieces))


def _expression(draw, depth: int) -> str:  # noqa: ANN001
    """A valid expression nested `depth` levels in one of several shapes."""
    atom = draw(st.sampled_from(["1", "x", "None", "'s'", "client"]))
    shape = draw(
        st.sampled_from(
            ["parens", "list", "call", "unary", "sum", "attr", "subscript", "lambda", "or", "ternary", "dict"]
        )
    )
    if shape == "parens":
        return "(" * min(depth, 190) + atom + ")" * min(depth, 190)
    if shape == "list":
        return "[" * min(depth, 190) + atom + "]" * min(depth, 190)
    if shape == "call":
        return "f(" * min(depth, 190) + atom + ")" * min(depth, 190)
    if shape == "dict":
        return "{'k': " * min(depth, 190) + atom + "}" * min(depth, 190)
    if shape == "unary":
        return "-" * depth + "1"
    if shape == "sum":
        return " + ".join(["1"] * (depth + 1))
    if shape == "attr":
        return "x" + ".a" * depth
    if shape == "subscript":
        return "x" + "[0]" * depth
    if shape == "lambda":
        return "lambda: " * depth + atom
    if shape == "or":
        return " or ".join([atom] * (depth + 1))
    return " if x else ".join([atom] * (depth + 1))


@st.composite
def modules(draw) -> tuple[str, int]:  # noqa: ANN001
    """(source, line of the sentinel call that must be reported as LG201)."""
    lines = ["import openai", "from tenacity import retry, stop_after_attempt", ""]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["client", "call", "string", "expr", "block", "comment", "retry"]))
        if kind == "client":
            timeout = draw(st.sampled_from(["", "timeout=30", "timeout=None", "max_retries=3, timeout=5.0"]))
            lines.append(f"client = openai.OpenAI({timeout})")
        elif kind == "call":
            extra = draw(st.sampled_from(["", ", max_tokens=100", ", max_tokens=None", ", timeout=9"]))
            lines.append(f"r = client.chat.completions.create(model='gpt-4o-mini', messages=[]{extra})")
        elif kind == "string":
            lines.append(f"PROMPT = {_string(draw)}")
        elif kind == "expr":
            lines.append(f"v = {_expression(draw, draw(st.integers(0, 400)))}")
        elif kind == "block":
            header = draw(st.sampled_from(["def g():", "class C:", "if x:", "while x:", "with x as y:", "try:"]))
            lines += [header, f"    w = {_string(draw)}", "    pass"]
            if header == "try:":
                lines += ["except Exception:", "    pass"]
        elif kind == "comment":
            lines.append(draw(st.sampled_from(["# noqa", "# llmguard: ignore[LG201]", "#" + "x" * 50, "# é \u2028"])))
        else:
            lines += ["@retry(stop=stop_after_attempt(3))", "def ask():", "    return 1"]
    lines.append("sentinel = openai.OpenAI()")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline, len(lines)


@FUZZ
@given(modules())
def test_generated_valid_modules_are_linted(module):
    source, sentinel = module
    data = source.encode("utf-8")
    _check(data, "gen.py", "python")
    findings = ENGINE.lint_bytes(data, "gen.py", "python").findings
    assert [f for f in findings if f.code == PARSE_ERROR] == [], source[:2000]
    assert ("LG201", sentinel) in {(f.code, f.line) for f in findings}, source[:2000]


@FUZZ
@given(modules(), st.integers(1, 4))
def test_generated_modules_in_notebook_cells(module, pieces):
    """The same code split into cells (a magic and a broken cell thrown in): each broken cell is reported
    once, and the rest is linted (the sentinel's LG201 is found when its cell and the import's parse)."""
    source, _ = module
    lines = split_lines(source)
    chunk = max(1, len(lines) // pieces)
    chunks = ["\n".join(lines[i : i + chunk]) for i in range(0, len(lines), chunk)]
    cells = [("code", "%pip install -q \\\n    openai"), ("code", "def broken(:"), *(("code", c) for c in chunks)]
    text = make_notebook(cells).encode("utf-8")
    _check(text, "gen.ipynb", "notebook")
    findings = ENGINE.lint_bytes(text, "gen.ipynb", "notebook").findings
    broken = [2] + [index for index, c in enumerate(chunks, start=3) if not _parses(c)]
    assert [f.cell for f in findings if f.code == PARSE_ERROR] == broken, cells
    last = len(cells)
    if last not in broken and 3 not in broken:  # the sentinel's cell, and the first with `import openai`
        assert ("LG201", last, len(split_lines(chunks[-1]))) in {(f.code, f.cell, f.line) for f in findings}


def split_lines(text: str) -> list[str]:
    """Lines as Python counts them (not str.splitlines, which also breaks at U+2028 and form feed)."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _parses(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
        return True
    except SyntaxError:
        return False


# -- mutated and truncated real files --------------------------------------------------------------
INSERTS = [
    b"(",
    b")",
    b"[",
    b"{",
    b"'",
    b'"',
    b'"""',
    b"\\",
    b"\n",
    b"\r",
    b"\t",
    b"\x0c",
    b"\x00",
    b"\xff",
    "\u2028".encode(),
    b"def f():\n",
    b"    ",
    b"%%time\n",
    b"!pip install \\\n",
    b"lambda: " * 50,
    b"(" * 300,
    b"+1" * 3000,
    b"[0]" * 1200,
    b"# noqa\n",
    b"\xef\xbb\xbf",
    b"# -*- coding: latin-1 -*-\n",
]


@st.composite
def mutated(draw) -> tuple[str, bytes]:  # noqa: ANN001
    name, data = draw(st.sampled_from(REAL))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "delete", "insert", "duplicate", "swap"]))
        at = draw(st.integers(0, len(data)))
        end = min(len(data), at + draw(st.integers(0, 200)))
        if op == "truncate":
            data = data[:at]
        elif op == "delete":
            data = data[:at] + data[end:]
        elif op == "insert":
            data = data[:at] + draw(st.sampled_from(INSERTS)) + data[at:]
        elif op == "duplicate":
            data = data[:end] + data[at:end] + data[end:]
        else:
            other = draw(st.integers(0, len(data)))
            a, b = sorted((at, other))
            data = data[b:] + data[a:b] + data[:a]
    return name, data


@MANY
@given(mutated())
def test_mutated_real_files_never_crash_the_linter(sample):
    name, data = sample
    _check(data, name, "notebook" if name.endswith(".ipynb") else "python")


@MANY
@given(mutated())
def test_mutated_files_as_notebook_cells(sample):
    name, data = sample
    if name.endswith(".ipynb"):
        source = data.decode("utf-8", errors="replace")
    else:
        source = data.decode("utf-8", errors="replace").replace("\x00", "")
    cut = len(source) // 2
    notebook = json.loads(make_notebook([("code", source[:cut]), ("markdown", "x"), ("code", source[cut:])]))
    notebook["metadata"] = {"kernelspec": "python", "language_info": [source[:10]]}  # wrong types, on purpose
    _check(json.dumps(notebook).encode("utf-8"), "cells.ipynb", "notebook")


def test_the_fuzz_inputs_exist():
    assert len(REAL) >= 20
    assert any(name.endswith(".ipynb") for name, _ in REAL)


@pytest.mark.parametrize("name", ["paren", "mixed"])
def test_hostile_nesting_patterns(name):
    """Fixed hostile inputs the generators only approach: past every limit, still an answer."""
    body = {"paren": "(" * 2500 + ")" * 2500, "mixed": "-(" * 1500 + "x" + ")" * 1500}[name]
    _check(("import openai\nx = " + body + "\n").encode(), "h.py", "python")
