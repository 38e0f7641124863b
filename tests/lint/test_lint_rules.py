"""Every rule's own valid and invalid examples, its documentation, and the rule registry."""

from __future__ import annotations

import pytest

from llmguard.lint import LintConfig, lint_source
from llmguard.lint.config import config_from_table
from llmguard.lint.engine import Engine
from llmguard.lint.fixer import fix_source
from llmguard.lint.rules import RULE_MODULES, all_codes, all_rules, get_rule

RULES = all_rules()


def _engine(code: str) -> Engine:
    codes = frozenset(all_codes()) if code == "LG000" else frozenset({code})
    return Engine(LintConfig(), codes)


def _examples(kind: str):
    for rule in RULES:
        for i, example in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, example, id=f"{rule.code}-{kind.lower()}-{i}")


def test_registry_maps_each_code_to_its_module():
    assert list(all_codes()) == sorted(all_codes())
    for code, module in RULE_MODULES.items():
        rule = get_rule(code)
        assert rule.code == code
        assert module.startswith(code.lower())
        assert rule.__module__.endswith(module)
    assert len({r.name for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_documents_what_why_example_and_fix(rule):
    docs = rule.docs()
    for heading in ("## What it does", "## Why is this bad", "## Example", "## Use instead"):
        assert heading in docs
    assert rule.summary and rule.summary.endswith(".")
    assert rule.VALID, f"{rule.code} has no valid examples"
    assert rule.INVALID or rule.code == "LG403", f"{rule.code} has no invalid examples"


@pytest.mark.parametrize(("rule", "source"), list(_examples("VALID")))
def test_valid_example_has_no_finding(rule, source):
    findings = [f for f in _engine(rule.code).lint_text(source, "example.py").findings if f.code == rule.code]
    assert findings == []


@pytest.mark.parametrize(("rule", "example"), list(_examples("INVALID")))
def test_invalid_example_is_flagged(rule, example):
    findings = [f for f in _engine(rule.code).lint_text(example.source, "example.py").findings if f.code == rule.code]
    assert len(findings) == example.count, [f.message for f in findings]
    for finding in findings:
        assert finding.name == rule.name
        assert finding.line >= 1 and finding.column >= 1
        assert (finding.end_line, finding.end_column) >= (finding.line, finding.column)


@pytest.mark.parametrize(("rule", "example"), [p for p in _examples("INVALID") if p.values[1].fixed is not None])
def test_fix_matches_the_documented_output_and_relints_clean(rule, example):
    engine = _engine(rule.code)
    fixed, applied = fix_source(engine, example.source, "example.py")
    assert applied >= 1
    assert fixed == example.fixed
    assert [f for f in engine.lint_text(fixed, "example.py").findings if f.code == rule.code] == []


def test_valid_examples_are_clean_under_every_rule():
    """Examples of one rule must not trip another (they double as a small correct corpus)."""
    engine = Engine(LintConfig())
    noisy = {}
    for rule in RULES:
        for source in rule.VALID:
            found = [f.code for f in engine.lint_text(source, "example.py").findings]
            if found:
                noisy[rule.code] = found
    assert noisy == {}


def test_lg403_template_loaded_by_literal_path(project):
    root = project(
        {
            "prompts/system.txt": "Follow the policy below exactly.\n"
            + "Policy clause about refunds and returns. " * 400,
            "prompts/short.txt": "Be brief.",
            "app.py": """
            from pathlib import Path
            from openai import OpenAI
            client = OpenAI(timeout=30)
            SYSTEM_PROMPT = open("prompts/system.txt").read()
            SHORT_PROMPT = (Path(__file__).parent / "prompts/short.txt").read_text()
            def ask(q):
                return client.chat.completions.create(model="gpt-4o-mini", max_tokens=50, messages=[
                    {"role": "system", "content": Path("prompts/system.txt").read_text()},
                    {"role": "user", "content": q}])
        """,
        }
    )
    config = config_from_table({"select": ["LG403"]}, root=root)
    findings = lint_source((root / "app.py").read_text(), str(root / "app.py"), config)
    assert [(f.code, f.line) for f in findings] == [("LG403", 4)]  # one finding per template file
    assert "prompts/system.txt" in findings[0].message and "max-prompt-tokens=2,000" in findings[0].message


def test_lg401_counts_tokens_like_the_guard():
    from llmguard.policies.tokens import count_text

    text = "Explain the refund policy in detail, step by step. " * 300
    findings = lint_source(f"SYSTEM_PROMPT = {text!r}\n", config=LintConfig(select=("LG401",)))
    assert len(findings) == 1
    assert f"{count_text(text, 'gpt-4o-mini').tokens:,} tokens" in findings[0].message


def test_call_targets_from_config_are_llm_calls():
    config = config_from_table({"call-targets": ["myapp.llm.ask"], "select": ["LG301"]})
    source = "from myapp.llm import ask\nask('hello')\nask('hello', max_tokens=20)\n"
    assert [f.line for f in lint_source(source, config=config)] == [2]


def test_low_confidence_when_the_receiver_is_unknown():
    findings = lint_source(
        "def f(x):\n    return x.chat.completions.create(model='m', messages=[])\n",
        config=LintConfig(select=("LG301",)),
    )
    assert [f.confidence for f in findings] == ["low"]


def test_clients_are_followed_through_attributes_and_with_options():
    source = """
from openai import OpenAI
class Bot:
    def __init__(self):
        self.client = OpenAI()
    def ask(self, msgs):
        return self.client.with_options(timeout=10).chat.completions.create(
            model="gpt-4o-mini", messages=msgs, max_tokens=10)
"""
    assert lint_source(source) == []
    unbounded = source.replace("with_options(timeout=10)", "with_options(max_retries=1)")
    assert [f.code for f in lint_source(unbounded)] == ["LG201"]
