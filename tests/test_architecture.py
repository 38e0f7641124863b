"""The import rules ARCHITECTURE.md states, checked on the source: imports run one way.

Every `import`/`from ... import` in llmguard/ is read with `ast` (function-level imports count;
imports under `if TYPE_CHECKING:` do not, as they never run). A rule names a part of the package
and the llmguard parts (or third-party roots) it must never import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "llmguard"

RUNTIME_BELOW_PIPELINE = ("pipeline", "intercept", "providers", "policies", "cache", "ledger", "types")
NOTEBOOK_AND_TOOLS = ("magics", "reporting", "lint", "sim", "cli", "demo")

# (part, forbidden llmguard parts, forbidden third-party roots, why)
RULES = [
    ("sim", "*", (), "the simulator is an independent oracle: it imports nothing else of llmguard"),
    ("types", "*", (), "the shared records depend on nothing"),
    (
        "lint",
        ("pipeline", "intercept", "providers", "cache", "ledger", "magics", "reporting", "sim", "config"),
        ("IPython", "ipywidgets", "openai", "anthropic"),
        "the linter never imports the runtime (pre-commit pays for every module)",
    ),
    *[
        (part, NOTEBOOK_AND_TOOLS, ("IPython", "ipywidgets", "rich"), "nothing below the pipeline imports IPython")
        for part in RUNTIME_BELOW_PIPELINE
    ],
    ("providers", ("pipeline", "policies", "cache", "ledger", "config"), (), "wire formats are pure functions"),
    ("intercept", ("pipeline",), (), "the seam is handed its guard; the pipeline drives the meter"),
    *[
        (part, ("pipeline", "intercept"), (), "policies, cache and ledger never call back into the pipeline")
        for part in ("policies", "cache", "ledger")
    ],
]


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "llmguard":
                found += [(node.lineno, f"llmguard.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _target(name: str) -> str | None:
    """The llmguard part an import names (`llmguard.pipeline.guard` -> `pipeline`), None if outside."""
    parts = name.split(".")
    if parts[0] != "llmguard":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _violations(part: str, parts_forbidden, roots_forbidden) -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _part(path) != part:
            continue
        for line, name in _imports(path):
            target = _target(name)
            if target is not None and target != part and target != "__version__":
                if parts_forbidden == "*" or target in parts_forbidden:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
            elif target is None and name.split(".")[0] in roots_forbidden:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize(
    ("part", "parts_forbidden", "roots_forbidden", "why"), RULES, ids=[f"{r[0]}-{i}" for i, r in enumerate(RULES)]
)
def test_imports_run_one_way(part, parts_forbidden, roots_forbidden, why):
    assert _violations(part, parts_forbidden, roots_forbidden) == [], why


def test_the_rules_can_fail():
    """The checker finds a forbidden import where one exists (the guard imports the pipeline)."""
    assert _violations("__init__", ("pipeline",), ()) != []


def test_every_part_is_named_in_architecture_md():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert [f for f in folders if f"`{f}/`" not in text] == []


def test_no_module_is_over_the_size_the_architecture_allows():
    """~400 lines a module (a few more after formatting are let through); the sim's tables are data."""
    big = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert big == {}
