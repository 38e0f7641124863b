"""LG501: an OpenAI/Anthropic/Google API key written into source, a comment or a notebook output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import libcst as cst

from llmguard.lint import keys
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, NotebookHit, Rule

# The examples below are built from pieces so that no literal in this file is a key itself.
_OPENAI = "sk-proj-" + "Qm7vT2xK9pLr4NcW8bYd3FhJ6sZa1GeU5iOq0nVt"
_ANTHROPIC = "sk-ant-api03-" + "Xv8Rk2Lm5Qp9Wt3Yz7Bn4Cd6Fg1Hj0Ks8Ma2Nb5Vc7Xe9Zr3Tq6Wp4Ly1Ui8Oa2d"
_GOOGLE = "AIza" + "SyB7x2Kq9LmN4pR8tV3wY6zC1dF5gH0jA7s"
_PLACEHOLDER = "sk-" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


class HardcodedApiKey(Rule):
    code = "LG501"
    name = "hardcoded-api-key"
    summary = "An OpenAI/Anthropic/Google API key is written into the code, a comment or a notebook output."
    literals = keys.KEY_LITERALS
    notebook_literals = keys.KEY_LITERALS
    what = """
Flags string literals (and comments) holding something shaped like a real API key: OpenAI
`sk-…` / `sk-proj-…` / `sk-svcacct-…`, Anthropic `sk-ant-…`, Google `AIza…`, of realistic length
and randomness. Placeholders (`sk-...`, `sk-xxxx…`, `sk-test-…`, `"<your key>"`) are not flagged.
In notebooks, markdown cells and saved cell outputs are checked too (a printed `os.environ` or a
traceback that shows a client's headers). The finding shows the key masked (`sk-ant-…4d2b`),
never whole.
"""
    why = """
A key in source ends up in git history, notebooks shared by mail or on GitHub, CI logs and
screenshots; bots scan public repositories for these prefixes within minutes. Anyone holding it
can spend your budget and read what your organisation sent. Removing the line is not enough once
it was committed or shared: revoke the key.
"""
    example = """
client = OpenAI(api_key="sk-proj-8fK2…", timeout=60)
"""
    use_instead = """
client = OpenAI(timeout=60)  # reads OPENAI_API_KEY from the environment (or a secrets manager)
"""
    VALID = (
        "import os\nfrom openai import OpenAI\nclient = OpenAI(api_key=os.environ['OPENAI_API_KEY'], timeout=30)\n",
        f"PLACEHOLDER = {_PLACEHOLDER!r}\nHINT = 'sk-...'\nOTHER = 'sk-test-' + 'abc'\nTASK = 'task-{'9' * 40}'\n",
        "ANTHROPIC_API_KEY = '<your key>'  # set sk-ant-... in .env\n",
    )
    INVALID = (
        Invalid(f"from openai import OpenAI\nclient = OpenAI(api_key={_OPENAI!r}, timeout=30)\n"),
        Invalid(f"import anthropic\nKEYS = {{'anthropic': {_ANTHROPIC!r}, 'google': {_GOOGLE!r}}}\n", count=2),
        Invalid(f"# old key: {_OPENAI}\nimport os\nkey = os.environ['OPENAI_API_KEY']\n"),
        Invalid(f'headers = {{"Authorization": f"Bearer {_OPENAI}"}}\n'),
    )

    def may_match(self, present: frozenset[str] | set[str], text: str, config: Any) -> bool:
        return any(literal in present for literal in self.literals) and keys.has_key(text)

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if not keys.has_key(ctx.source):
            return
        finder = _KeyNodes()
        ctx.module.visit(finder)
        for node, found in finder.hits:
            yield Report(node, _message(found))

    def check_notebook(self, cells: list[dict[str, Any]]) -> Iterator[NotebookHit]:
        for index, cell in enumerate(cells, start=1):
            if not isinstance(cell, dict):
                continue
            if cell.get("cell_type") in ("markdown", "raw"):
                for line_no, line in enumerate(_text(cell.get("source")).splitlines(), start=1):
                    for found in keys.find_keys(line):
                        yield NotebookHit(
                            index,
                            line_no,
                            found.start + 1,
                            found.end + 1,
                            _message(found, f"in this {cell['cell_type']} cell", "remove it from the notebook"),
                        )
            outputs = cell.get("outputs")
            if cell.get("cell_type") != "code" or not isinstance(outputs, list):
                continue
            for number, output in enumerate(outputs, start=1):
                for text in _output_texts(output):
                    for found in keys.find_keys(text):
                        yield NotebookHit(
                            index,
                            1,
                            1,
                            1,
                            _message(
                                found,
                                f"in the saved output of this cell (output {number})",
                                "clear the outputs (`jupyter nbconvert --clear-output --inplace`)",
                            ),
                        )


class _KeyNodes(cst.CSTVisitor):
    """String pieces and comments holding a key (run only when the raw text has one)."""

    def __init__(self) -> None:
        self.hits: list[tuple[cst.CSTNode, keys.KeyMatch]] = []

    def _scan(self, node: cst.CSTNode, text: str) -> None:
        self.hits.extend((node, found) for found in keys.find_keys(text))

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._scan(node, node.value)

    def visit_FormattedStringText(self, node: cst.FormattedStringText) -> None:
        self._scan(node, node.value)

    def visit_Comment(self, node: cst.Comment) -> None:
        self._scan(node, node.value)


def _message(found: keys.KeyMatch, where: str | None = None, then: str = "") -> str:
    provider = keys.PROVIDERS[found.provider]
    if where is None:
        return (
            f"hard-coded {provider} API key {found.masked}: revoke it and load keys from the environment "
            "or a secrets manager"
        )
    return f"{provider} API key {found.masked} {where}: revoke it and {then}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _output_texts(output: Any) -> Iterator[str]:
    """Every string of a saved output: stream text, rich data (any mime type), error value and traceback."""
    if not isinstance(output, dict):
        return
    stack: list[Any] = [output.get("text"), output.get("data"), output.get("evalue"), output.get("traceback")]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                yield "".join(value)
            else:
                stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
