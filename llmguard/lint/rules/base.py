"""The shape of a rule: code, name, documentation, examples, a prefilter and a check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from llmguard.lint import sdk
from llmguard.lint.findings import Report

if TYPE_CHECKING:
    from llmguard.lint.config import LintConfig
    from llmguard.lint.context import FileContext
    from llmguard.lint.treefilter import TreeFacts


@dataclass(frozen=True)
class NotebookHit:
    """A hit in a notebook outside its joined code (a saved output, a markdown cell): where and what.

    `cell` is 1-based over all cells, `line`/`column` 1-based inside the cell's source, or 1/1 for an
    output (outputs have no source lines).
    """

    cell: int
    line: int
    column: int
    end_column: int
    message: str


@dataclass(frozen=True)
class Invalid:
    """An example the rule must flag `count` times; `fixed` is what `--fix` must turn it into."""

    source: str
    count: int = 1
    fixed: str | None = None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line, shown by `llmguard rule --all` and as SARIF's short description
    what: ClassVar[str]
    why: ClassVar[str]
    example: ClassVar[str]
    use_instead: ClassVar[str]
    literals: ClassVar[tuple[str, ...]] = sdk.SDK_LITERALS  # a file without any of these cannot match
    also: ClassVar[tuple[str, ...]] = ()  # ...nor one without any of these (when given)
    fixable: ClassVar[bool] = False
    skips_tests: ClassVar[bool] = False  # finds nothing in test files unless include-tests (config.skips_test_rules)
    notebook_literals: ClassVar[tuple[str, ...]] = ()  # a notebook's raw JSON needs one for check_notebook
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[Invalid, ...]] = ()

    def may_match(self, present: frozenset[str] | set[str], text: str, config: LintConfig) -> bool:
        """Can this rule match a file? `present` holds the prefilter literals found in `text`.

        A superset test: False only when `check` would surely find nothing in `text`.
        """
        if not any(literal in present for literal in self.literals):
            return False
        return not self.also or any(literal in present for literal in self.also)

    def may_match_tree(self, facts: TreeFacts) -> bool:
        """Can this rule match a file with this CPython tree? Asked before libcst parses it; a
        superset test like `may_match`."""
        return True

    @classmethod
    def prefilter_literals(cls) -> tuple[str, ...]:
        return cls.literals + cls.also

    def check(self, ctx: FileContext) -> Iterable[Report]:
        raise NotImplementedError

    def check_notebook(self, cells: list[dict[str, Any]]) -> Iterable[NotebookHit]:
        """Hits in what `check` never sees: saved outputs and non-code cells. Most rules have none.

        The engine calls it once per notebook whose raw JSON contains one of `notebook_literals`.
        """
        return ()

    @classmethod
    def docs(cls) -> str:
        """Markdown documentation: What it does / Why is this bad / Example / Use instead."""
        fix = "\n\nFix: `llmguard lint --fix` applies this change (values from config)." if cls.fixable else ""
        return (
            f"# {cls.code} {cls.name}\n\n{cls.summary}\n\n"
            f"## What it does\n\n{cls.what.strip()}\n\n"
            f"## Why is this bad\n\n{cls.why.strip()}\n\n"
            f"## Example\n\n```python\n{cls.example.strip()}\n```\n\n"
            f"## Use instead\n\n```python\n{cls.use_instead.strip()}\n```{fix}\n"
        )
