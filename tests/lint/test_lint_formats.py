"""Output formats and fixes: SARIF fixes/levels/help, notebook JSON kept as written, comments kept,
and the cost map (`%%llm` cells, `**DEFAULT_ARGS`, a readable table without a terminal)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tokenize
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from conftest import BAD_PY, SARIF_SCHEMA, make_notebook

from llmguard.lint import LintConfig
from llmguard.lint.engine import Engine
from llmguard.lint.fixer import fix_file
from llmguard.lint.rules import all_codes
from llmguard.policies.pricing import default_pricer
from llmguard.policies.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, count_messages, count_text

REPO = Path(__file__).resolve().parents[2]


def _validate(log: dict) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)


def _apply(text: str, replacements: list[dict]) -> str:
    """Apply SARIF replacements (1-based line/column regions of `text`), last first."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    spans = sorted(
        (
            (
                offset(r["deletedRegion"]["startLine"], r["deletedRegion"]["startColumn"]),
                offset(r["deletedRegion"]["endLine"], r["deletedRegion"]["endColumn"]),
                r.get("insertedContent", {}).get("text", ""),
            )
            for r in replacements
        ),
        reverse=True,
    )
    for start, end, inserted in spans:
        text = text[:start] + inserted + text[end:]
    return text


# -- 1. SARIF ---------------------------------------------------------------------------------------
def test_sarif_has_real_fixes_levels_by_severity_and_the_rule_docs(cli, project):
    nb = make_notebook([("markdown", "# nb"), ("code", "from anthropic import Anthropic\nllm = Anthropic()")])
    root = project({"app/bad.py": BAD_PY, "app/nb.ipynb": nb})
    result = cli(["lint", "app", "--format", "sarif", "--no-cache"], cwd=root)
    log = json.loads(result.out)
    _validate(log)
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for code, rule in rules.items():
        assert rule["help"]["markdown"].strip() == cli(["rule", code]).out.strip()
        assert "helpUri" not in rule  # no per-rule page exists anywhere: no placeholder URL
    assert {c: rules[c]["defaultConfiguration"]["level"] for c in ("LG000", "LG102", "LG201", "LG203", "LG301")} == {
        "LG000": "error",
        "LG102": "error",
        "LG201": "warning",
        "LG203": "note",
        "LG301": "warning",
    }
    by_code = {}
    for r in run["results"]:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_code[(uri, r["ruleId"])] = r
        assert r["level"] == rules[r["ruleId"]]["defaultConfiguration"]["level"]
    assert sorted(by_code) == [
        ("app/bad.py", "LG102"),
        ("app/bad.py", "LG201"),
        ("app/bad.py", "LG301"),
        ("app/nb.ipynb", "LG201"),
    ]

    bad = (root / "app" / "bad.py").read_text()
    timeout = by_code[("app/bad.py", "LG201")]["fixes"]
    assert len(timeout) == 1 and timeout[0]["description"]["text"] == "add timeout=60"
    (change,) = timeout[0]["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "app/bad.py", "uriBaseId": "%SRCROOT%"}
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 4, "startColumn": 24, "endLine": 4, "endColumn": 24},
            "insertedContent": {"text": "timeout=60"},
        }
    ]
    stop = by_code[("app/bad.py", "LG102")]["fixes"][0]["artifactChanges"][0]["replacements"]
    assert _apply(bad, stop) == bad.replace(
        "from tenacity import retry, wait_exponential",
        "from tenacity import retry, wait_exponential, stop_after_attempt",
    ).replace("@retry(wait=wait_exponential())", "@retry(wait=wait_exponential(), stop=stop_after_attempt(5))")

    # in a notebook the regions are lines of the .ipynb JSON: applying them gives what --fix writes
    (change,) = by_code[("app/nb.ipynb", "LG201")]["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "app/nb.ipynb"
    patched = _apply(nb, change["replacements"])
    cli(["lint", "app/nb.ipynb", "--fix", "--no-cache"], cwd=root)
    assert patched == (root / "app" / "nb.ipynb").read_text()
    assert "Anthropic(timeout=60)" in patched


# -- 2. --fix: notebook JSON layout, LG000 notebooks, comments -----------------------------------
COLAB_CELLS = [
    {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"id": "a1"},
        "outputs": [],
        "source": ["# café: préparer le client\n", "from openai import OpenAI\n", "client = OpenAI()"],
    },
    {"cell_type": "markdown", "metadata": {"id": "b2"}, "source": ["Notes — «résumé»"]},
    {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"id": "c3"},
        "outputs": [],
        "source": [
            "r = client.chat.completions.create(\n",
            '    model="gpt-4o-mini",\n',
            '    messages=[{"role": "user", "content": "¿qué?"}],\n',
            ")\n",
        ],
    },
]


def _colab(indent: int | None, ensure_ascii: bool, newline: str, string_sources: bool = False) -> str:
    cells = json.loads(json.dumps(COLAB_CELLS))
    if string_sources:
        for cell in cells:
            cell["source"] = "".join(cell["source"])
    data = {
        "nbformat": 4,
        "nbformat_minor": 0,
        "metadata": {
            "colab": {"provenance": []},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }
    return json.dumps(data, indent=indent, ensure_ascii=ensure_ascii) + newline


@pytest.mark.parametrize(
    ("indent", "ensure_ascii", "newline", "strings"),
    [
        (2, True, "", False),  # Colab: indent 2, \u escapes, no final newline, nbformat keys first
        (1, False, "\n", False),  # Jupyter
        (4, False, "\n", True),  # source as one string per cell
        (None, True, "", False),  # all on one line
    ],
    ids=["colab", "jupyter", "string-sources", "one-line"],
)
def test_fix_keeps_the_notebooks_json_layout(cli, project, indent, ensure_ascii, newline, strings):
    text = _colab(indent, ensure_ascii, newline, strings)
    root = project({"nb.ipynb": text})
    result = cli(["lint", "nb.ipynb", "--fix", "--no-cache"], cwd=root)
    assert "Fixed 2 findings." in result.err
    new = (root / "nb.ipynb").read_text(encoding="utf-8")
    expected = json.loads(text)
    for index, old, fixed in ((0, "client = OpenAI()", "client = OpenAI(timeout=60)"), (2, "    messages=", None)):
        source = expected["cells"][index]["source"]
        lines = source if isinstance(source, list) else [source]
        if fixed is not None:
            lines[:] = [line.replace(old, fixed) for line in lines]
        else:
            at = next(i for i, line in enumerate(lines) if old in line)
            if isinstance(source, list):
                lines.insert(at + 1, "    max_completion_tokens=1024,\n")
            else:
                lines[0] = lines[0].replace("}],\n", "}],\n    max_completion_tokens=1024,\n")
        expected["cells"][index]["source"] = lines if isinstance(source, list) else lines[0]
    assert json.loads(new) == expected
    assert list(json.loads(new)) == list(json.loads(text))  # key order kept
    assert new == json.dumps(expected, indent=indent, ensure_ascii=ensure_ascii) + newline


def test_fix_says_when_it_skips_a_notebook_with_a_parse_error(project):
    text = make_notebook(
        [
            ("code", "from openai import OpenAI\nclient = OpenAI()"),
            ("markdown", "x"),
            ("code", "def broken(:\n    pass"),
        ]
    )
    engine = Engine(LintConfig(), frozenset(all_codes()))
    outcome = fix_file(engine, text.encode(), "work/nb.ipynb", "notebook")
    assert outcome.new_text is None and outcome.applied == 0
    assert outcome.skipped is not None
    assert outcome.skipped.startswith("llmguard lint --fix: work/nb.ipynb: not fixed: cell 3 does not parse")
    assert "LG000" in outcome.skipped and "run --fix again" in outcome.skipped
    clean = make_notebook([("code", "x = 1"), ("code", "def broken(:\n    pass")])
    assert fix_file(engine, clean.encode(), "clean.ipynb", "notebook").skipped is None  # nothing to fix there


COMMENTED = """\
import openai
from tenacity import (
    retry,
    wait_random  # last name, no comma
)

# a comment above the call
# and a second one
client = openai.OpenAI(  # after the paren
    api_key="sk-test",
)
one = openai.OpenAI(
    # nothing but a comment
)
two = openai.OpenAI(  # only this comment
)
s = client.chat.completions.create(model="gpt-4o-mini", messages=[]  # inline
)
t = client.chat.completions.create(
    model="gpt-4o-mini",  # cheap
    # messages below
    messages=[]  # last, no comma
    # before the paren
)


@retry(  # after the decorator paren
    wait=wait_random(1, 2)  # the wait
)
def g():
    pass
"""

COMMENTED_FIXED = """\
import openai
from tenacity import (
    retry,
    wait_random,  # last name, no comma
    stop_after_attempt
)

# a comment above the call
# and a second one
client = openai.OpenAI(  # after the paren
    api_key="sk-test",
    timeout=60,
)
one = openai.OpenAI(
    # nothing but a comment
    timeout=60,
)
two = openai.OpenAI(  # only this comment
    timeout=60,
)
s = client.chat.completions.create(model="gpt-4o-mini", messages=[], max_completion_tokens=1024  # inline
)
t = client.chat.completions.create(
    model="gpt-4o-mini",  # cheap
    # messages below
    messages=[],  # last, no comma
    max_completion_tokens=1024
    # before the paren
)


@retry(  # after the decorator paren
    wait=wait_random(1, 2),  # the wait
    stop=stop_after_attempt(5)
)
def g():
    pass
"""


def _comments(source: str) -> list[tuple[str, str]]:
    """(comment, the code before it on its line without trailing commas) for every comment, in order."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.string, token.line[: token.start[1]].rstrip().rstrip(",")))
    return found


def test_fix_never_moves_or_deletes_comments(cli, project):
    root = project({"c.py": COMMENTED})
    result = cli(["lint", "c.py", "--fix", "--no-cache"], cwd=root)
    fixed = (root / "c.py").read_text()
    assert "Fixed 6 findings." in result.err
    assert [c for c, _ in _comments(fixed)] == [c for c, _ in _comments(COMMENTED)]
    code_before = dict(_comments(COMMENTED))
    for comment, before in _comments(fixed):
        if comment != "# inline":  # the one place new code goes before a comment on the same line
            assert before == code_before[comment], comment
    assert fixed == COMMENTED_FIXED


# -- 3. --costs ------------------------------------------------------------------------------------
def test_costs_include_llm_cell_magics(cli):
    rows = cli(["lint", "notebooks/quickstart.ipynb", "--costs", "--format", "json"], cwd=REPO).json()
    magics = {r["cell"]: r for r in rows if r["endpoint"] == "%%llm"}
    assert sorted(magics) == [12, 15]
    report = magics[15]
    prompt = "Write a detailed report on  for the whole engineering team."  # {topic} is filled at run time
    tokens = count_messages([{"role": "user", "content": prompt}], "gpt-4o").tokens
    assert (report["provider"], report["model"], report["max_tokens"], report["line"]) == ("openai", "gpt-4o", 2000, 1)
    assert (report["prompt_tokens"], report["prompt_tokens_approximate"], report["bounded"]) == (tokens, True, True)
    worst = default_pricer().worst_case("openai", "gpt-4o", tokens, 2000)
    assert Decimal(str(report["worst_case_usd"])) == worst.quantize(Decimal(str(report["worst_case_usd"])))
    assert (magics[12]["model"], magics[12]["max_tokens"]) == ("gpt-4o-mini", 120)


def test_costs_follow_llmguard_llm_session_defaults(cli, project):
    root = project(
        {
            "nb.ipynb": make_notebook(
                [
                    ("code", "%%llm\nHello"),
                    ("code", "%llmguard llm --provider anthropic --max-tokens 300"),
                    ("code", "%%llm --system 'Be brief.'\nHello"),
                    ("code", "%llmguard llm --model claude-3-5-sonnet-latest"),
                    ("code", "%%llm --provider openai --max-tokens 50\nHello"),
                ]
            )
        }
    )
    rows = cli(["lint", ".", "--costs", "--format", "json"], cwd=root).json()
    found = sorted((r["cell"], r["provider"], r["model"], r["max_tokens"], r["prompt_tokens"]) for r in rows)
    hello = count_messages([{"role": "user", "content": "Hello"}], "gpt-4o-mini").tokens
    brief = count_messages([{"role": "user", "content": "Hello"}], "claude-3-5-haiku-latest", system="Be brief.").tokens
    assert found == [
        (1, "openai", "gpt-4o-mini", 1024, hello),
        (3, "anthropic", "claude-3-5-haiku-latest", 300, brief),
        (5, "openai", "gpt-4o-mini", 50, hello),
    ]  # another provider than the default: its model


def test_cost_map_llm_defaults_match_the_magic():
    from llmguard.lint import llm_cells
    from llmguard.magics import cell_llm

    assert llm_cells.LLM_DEFAULT_MODELS == cell_llm.DEFAULT_MODELS
    assert llm_cells.LLM_DEFAULT_MAX_TOKENS == cell_llm.DEFAULT_MAX_TOKENS
    assert llm_cells.LLM_PROVIDERS == cell_llm.PROVIDERS
    ours = {a.dest: a.option_strings for a in llm_cells.LLM_MAGIC_PARSER._actions}
    theirs = {a.dest: a.option_strings for a in cell_llm.PARSER._actions}
    assert ours == theirs


DEFAULT_ARGS = """\
from openai import OpenAI

client = OpenAI(timeout=30)
DEFAULT_ARGS = {"model": "gpt-4o", "max_tokens": 500}
NESTED = dict(**DEFAULT_ARGS, temperature=0)

def ask(q):
    return client.chat.completions.create(**DEFAULT_ARGS, messages=[{"role": "user", "content": "Hi"}])

def nested(q):
    return client.chat.completions.create(**NESTED, messages=[])

def unknown(q, **kwargs):
    return client.chat.completions.create(model="gpt-4o", messages=[], **kwargs)
"""


def test_costs_resolve_default_args_dicts(cli, project):
    root = project({"calls.py": DEFAULT_ARGS})
    rows = {r["line"]: r for r in cli(["lint", ".", "--costs", "--format", "json"], cwd=root).json()}
    tokens = REPLY_PRIMING + TOKENS_PER_MESSAGE + count_text("Hi", "gpt-4o").tokens  # as test_lint_costs counts
    ask, nested, unknown = rows[8], rows[11], rows[14]
    assert (ask["model"], ask["max_tokens"], ask["bounded"], ask["prompt_tokens"]) == ("gpt-4o", 500, True, tokens)
    assert Decimal(str(ask["worst_case_usd"])) > 0
    assert (nested["model"], nested["max_tokens"]) == ("gpt-4o", 500)
    # **kwargs from the caller: the bound is not known here, which is not the same as no bound
    assert (unknown["model"], unknown["max_tokens"], unknown["bounded"]) == ("gpt-4o", None, True)


def test_cost_table_is_readable_through_a_pipe_at_80_columns(project):
    long_dir = "services/summarisation/pipelines/nightly"
    root = project(
        {
            f"{long_dir}/report_generation_notebook.ipynb": make_notebook(
                [
                    (
                        "code",
                        "%%llm -m claude-3-5-sonnet-latest --provider anthropic --max-tokens 123456\nSummarise {x}",
                    ),
                    (
                        "code",
                        "from openai import OpenAI\nc = OpenAI(timeout=3)\n"
                        "c.chat.completions.create(model='gpt-4o-mini-2024-07-18', messages=[])",
                    ),
                ]
            ),
        }
    )
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "llmguard.lint", "lint", ".", "--costs"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not set("│┃━─┏┓┗┛┡┩└┘") & set(out)
    lines = out.splitlines()
    where = f"{long_dir}/report_generation_notebook.ipynb"
    sonnet = [line for line in lines if f"{where}:cell 1:1 " in line]
    assert len(sonnet) == 1 and "claude-3-5-sonnet-latest" in sonnet[0] and "123,456" in sonnet[0]
    mini = [line for line in lines if f"{where}:cell 2:3 " in line]
    assert len(mini) == 1 and "gpt-4o-mini-2024-07-18" in mini[0] and " none " in mini[0] and "unbounded" in mini[0]
    header = next(line for line in lines if line.startswith("location"))
    assert header.split() == ["location", "provider", "model", "prompt", "tokens", "max", "tokens", "worst", "case"]
