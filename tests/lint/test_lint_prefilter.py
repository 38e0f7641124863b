"""The prefilters are superset tests: skipping libcst for a file never loses a finding.

Every rule is run on every Python text the linter's own tests hold (the rules' examples, the good
corpus, the snippets in tests/lint/*.py), at an ordinary path and at a test path, as written and
padded past the length from which the guard compiles it (so the tree prefilter, treefilter.py,
runs too), once with both prefilters and once with them forced to let everything through; the
findings must be the same.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest
from conftest import GOOD_CORPUS

from llmguard.lint import LintConfig, guard
from llmguard.lint.engine import Engine
from llmguard.lint.prefilter import may_construct_client, may_import_sdk
from llmguard.lint.rules import all_codes, all_rules
from llmguard.lint.treefilter import TreeFacts

HERE = Path(__file__).parent


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _snippets() -> list[str]:
    """Python texts: rule examples, the good corpus and multi-line string literals of the lint tests."""
    texts: list[str] = []
    for rule in all_rules():
        texts.extend(rule.VALID)
        texts.extend(example.source for example in rule.INVALID)
        texts.extend(example.fixed for example in rule.INVALID if example.fixed)
    texts.extend(path.read_text(encoding="utf-8") for path in sorted(GOOD_CORPUS.glob("*.py")))
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
                texts.append(node.value)
    import textwrap

    unique = dict.fromkeys(textwrap.dedent(text) for text in texts)
    return [text for text in unique if _parses(text)]


PADDING = "\n# " + "padding " * 120 + "\n"  # past guard._SHORT: CPython's tree is built
SNIPPETS = _snippets()
TEXTS = SNIPPETS + [text + PADDING for text in SNIPPETS]
PATHS = ("app/service.py", "tests/test_service.py")


def _findings(engine: Engine, text: str, path: str) -> list[tuple[object, ...]]:
    return [f.as_tuple() for f in engine.lint_text(text, path).findings]


def test_prefilter_keeps_every_finding_of_every_rule(monkeypatch):
    """Rules find things independently, so one engine with every rule compares them all at once."""
    assert len(SNIPPETS) > 150
    engine = Engine(LintConfig(), frozenset(all_codes()))
    filtered = {(i, path): _findings(engine, text, path) for i, text in enumerate(TEXTS) for path in PATHS}
    inspect = guard.inspect
    monkeypatch.setattr(Engine, "candidates", lambda self, text, path=None: list(self.rules))
    monkeypatch.setattr(guard, "inspect", lambda text: (inspect(text)[0], None))  # no tree: no tree prefilter
    everything = {(i, path): _findings(engine, text, path) for i, text in enumerate(TEXTS) for path in PATHS}
    lost = {key: found for key, found in everything.items() if found != filtered[key]}
    assert lost == {}
    codes = {finding[0] for found in everything.values() for finding in found}
    assert codes >= set(all_codes()) - {"LG000", "LG403"}, "the snippets must exercise every rule"


CONSTRUCTIONS = [
    "from openai import OpenAI\nc = OpenAI()\n",
    "import openai\nc = openai.AsyncOpenAI (\n)\n",
    "import anthropic\nc = (anthropic.Anthropic)(api_key='k')\n",
    "import anthropic as a\nc = a.AsyncAnthropicBedrock(\n)\n",
    "import openai\nc = (openai.AzureOpenAI  # the Azure one\n    (api_version='x'))\n",
    "import openai\nc = openai.Client \\\n    ()\n",
    "from openai import (\n    OpenAI  # the client\n    as Make,\n)\nc = Make()\n",
    "from anthropic import AnthropicVertex as V\nc = V()\n",
    "from openai import *\nc = AsyncClient()\n",
    "import json, \\\n    openai as oa\nc = oa.OpenAI()\n",
    "import os; import anthropic.types\nc = anthropic.Anthropic()\n",
    "def make():\n    from  anthropic  import Anthropic\n    return Anthropic()\n",
]


@pytest.mark.parametrize("source", CONSTRUCTIONS)
def test_every_way_to_construct_a_client_passes_the_prefilters(source):
    engine = Engine(LintConfig(), frozenset({"LG201"}))
    assert [f.code for f in engine.lint_text(source, "app.py").findings] == ["LG201"]
    assert [f.code for f in engine.lint_text(source + PADDING, "app.py").findings] == ["LG201"]
    assert may_construct_client(source) and may_import_sdk(source)
    assert TreeFacts(ast.parse(source)).constructs_client


@pytest.mark.parametrize(
    "source",
    [
        "import openai\nopenai.api_key = 'x'\n",
        "from openai import OpenAI\n\ndef make() -> OpenAI:  # returns an OpenAI client\n    ...\n",
        "import anthropic\nprint(anthropic.Anthropic.__doc__)\n",
        "import openai\n# call OpenAI later\nx = 'OpenAI'\n",
        "from langchain_openai import ChatOpenAI\nllm = ChatOpenAI(model='gpt-4o')\n",
        "from openai.types import Model\nimport openai_helpers\nc = openai_helpers.OpenAI()\n",
    ],
)
def test_files_that_only_mention_the_sdk_skip_libcst_for_lg201(source):
    engine = Engine(LintConfig(), frozenset({"LG201"}))
    assert engine.candidates(source) == []


def test_a_test_file_skips_the_rules_that_skip_tests():
    source = "from openai import OpenAI\nc = OpenAI()\n"
    engine = Engine(LintConfig(), frozenset({"LG201"}))
    assert engine.candidates(source, "tests/test_app.py") == []
    assert [r.code for r in engine.candidates(source, "app.py")] == ["LG201"]
    included = Engine(LintConfig(include_tests=True), frozenset({"LG201"}))
    assert [r.code for r in included.candidates(source, "tests/test_app.py")] == ["LG201"]


@pytest.mark.parametrize(
    "source",
    [
        "import openai\nfrom openai import OpenAI\nc = make(OpenAI)()\n",
        "from mylib import OpenAI\nimport openai\nc = OpenAI()\n",
        "from . import openai\nc = openai.OpenAI()\n",
        "import openai.types\nc = openai.types.OpenAI()\n",
        "OpenAI = object\nimport anthropic\nc = OpenAI()\n",
    ],
)
def test_files_with_no_client_constructor_skip_libcst_for_lg201(source):
    assert may_construct_client(source)
    assert not TreeFacts(ast.parse(source)).constructs_client
    engine = Engine(LintConfig(), frozenset({"LG201"}))
    assert engine.lint_text(source + PADDING, "app.py").parsed is False


def test_the_tree_prefilter_counts_every_import_of_a_name():
    """libcst's import table keeps the last import of a name; the tree prefilter keeps them all."""
    source = "from openai import OpenAI\nfrom mylib import OpenAI\nc = OpenAI()\n"
    assert TreeFacts(ast.parse(source)).constructs_client


def test_the_client_prefilter_does_not_backtrack():
    hostile = ("OpenAI " + "# )" * 20_000 + "\n") * 50
    assert not may_construct_client(hostile)
