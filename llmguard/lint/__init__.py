"""`llmguard lint`: a static linter for LLM call hazards (unbounded retries, missing timeouts,
unlimited max tokens, oversized prompts), for `.py` files and Jupyter notebooks.

Library API (importing this package stays light; libcst loads on first use):

    from llmguard.lint import lint_source, load_config
    findings = lint_source(code, path="<cell>", config=load_config("."))

Positions: lines and columns are 1-based (columns count code points; `end_column` is exclusive).
In a notebook, `cell` is the 1-based index of the cell among all the notebook's cells (markdown and
raw cells count: it is `nb.cells[cell - 1]`), and `line` is the 1-based line inside that cell.
`lint_source` lints Python text; use `lint_notebook_source` for a notebook's JSON.

Exit codes of the CLI: 0 no findings, 1 findings (LG000 included), 2 usage or config error, an
unreadable folder, or a linter bug (reported with the file it hit; the rest of the run goes on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmguard.lint.config import LintConfig, LintConfigError, load_config
from llmguard.lint.findings import Finding

if TYPE_CHECKING:
    from llmguard.lint.runner import RunResult

__all__ = [
    "Finding",
    "LintConfig",
    "LintConfigError",
    "lint_source",
    "lint_notebook_source",
    "lint_paths",
    "load_config",
]


def lint_source(source: str, path: str = "<cell>", config: LintConfig | None = None) -> list[Finding]:
    """Findings for Python source text, sorted by position.

    Unless `path` names a `.py` file, the text is treated as a notebook cell: IPython magics and
    shell lines are neutralised first (lines keep their numbers), so `%time` or `!pip` never
    cause a syntax error.
    """
    from llmguard.lint.prefilter import may_need_rules

    config = config or LintConfig()
    if not may_need_rules(source, config):  # plain text: done without loading libcst
        return []
    from llmguard.lint.engine import engine_for

    if not path.endswith((".py", ".pyi")):
        from llmguard.lint.notebooks import neutralise

        lines, replaced = neutralise(source)
        if replaced:
            source = "\n".join(lines) + ("\n" if source.endswith("\n") else "")
    engine = engine_for(config)
    return engine.lint_text(source, path).findings


def lint_notebook_source(
    notebook_json: str, path: str = "<notebook>", config: LintConfig | None = None
) -> list[Finding]:
    """Findings for a notebook given as its JSON text; positions are (cell, line) as documented above."""
    from llmguard.lint.engine import engine_for

    engine = engine_for(config or LintConfig())
    return engine.lint_bytes(notebook_json.encode("utf-8"), path, "notebook").findings


def lint_paths(
    paths: list[str], config: LintConfig | None = None, *, use_cache: bool = True, jobs: int = 0
) -> RunResult:
    """Lint files and folders like the CLI does (discovery, cache, parallel workers)."""
    from llmguard.lint.runner import run

    return run(paths, config or load_config(paths[0] if paths else "."), use_cache=use_cache, jobs=jobs)
