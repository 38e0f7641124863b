"""The library API the notebook magics reuse, and import lightness."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from llmguard.lint import Finding, LintConfig, lint_source, load_config


def test_lint_source_returns_findings():
    findings = lint_source("import openai\nclient = openai.OpenAI()\n")
    assert findings == [
        Finding(
            "LG201",
            "client-without-timeout",
            findings[0].message,
            "<cell>",
            2,
            10,
            2,
            25,
            None,
            "high",
            "add timeout=60",
        )
    ]
    assert lint_source("x = 1\n") == []
    assert lint_source("import openai\nopenai.OpenAI()\n", config=LintConfig(ignore=("LG201",))) == []


def test_lint_source_accepts_a_cell_with_magics():
    cell = "%time x = 1\n!pip install openai\nimport openai\nclient = openai.OpenAI()\n"
    assert [(f.code, f.line) for f in lint_source(cell)] == [("LG201", 4)]
    assert [f.code for f in lint_source(cell, path="script.py")] == ["LG000"]


def test_load_config_from_a_directory(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.llmguard.lint]\nmax-prompt-tokens = 10\n")
    assert load_config(tmp_path).max_prompt_tokens == 10


def test_importing_llmguard_and_the_lint_cli_does_not_load_libcst():
    code = (
        "import sys, llmguard, llmguard.lint, llmguard.lint.cli; "
        "findings = llmguard.lint.lint_source('x = 1\\nprint(x)\\n'); "
        "assert findings == [] and 'libcst' not in sys.modules, 'libcst imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_rule_prefilter_is_covered_by_the_cheap_one():
    """lint_source skips libcst when prefilter.may_need_rules says no rule can match: it must be a superset."""
    from llmguard.lint.prefilter import ANY_RULE_LITERALS
    from llmguard.lint.rules import all_rules

    for rule in all_rules():
        assert set(rule.literals) <= set(ANY_RULE_LITERALS), rule.code


def test_the_linter_imports_only_tokens_and_pricing_from_llmguard():
    """lint/ shares tokens.py and pricing.py with the guard and nothing else (DESIGN.md)."""
    import ast
    from pathlib import Path

    import llmguard.lint

    allowed = {"llmguard", "llmguard.policies.tokens", "llmguard.policies.pricing"}
    offenders = []
    for path in Path(llmguard.lint.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            for name in names:
                if name.startswith("llmguard") and not name.startswith("llmguard.lint") and name not in allowed:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("openai.OpenAI()tenacity:retry\n =[]{}'\"#\\%!@*,0123456789xy")), max_size=200
    )
)
def test_arbitrary_text_never_crashes(text):
    for finding in lint_source("import openai\n" + text):
        assert finding.line >= 1 and finding.column >= 1
        assert "internal error" not in finding.message
