"""Fix descriptions the rules attach to reports; `fixer.py` applies them with libcst."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from llmguard.lint.context import FileContext


@dataclass(eq=False)
class AddKeyword:
    """Add `keyword=value` to a call (or turn a bare decorator into a call), plus an import if needed."""

    target: cst.Call | cst.Decorator
    keyword: str
    value: str  # Python source of the value
    import_into: cst.ImportFrom | None = None  # a `from X import ...` that gets `import_name` added
    import_name: str | None = None

    def describe(self) -> str:
        return f"add {self.keyword}={self.value}"


def number_source(value: float) -> str:
    """A configured number as the Python source a fix writes: `30` for 30.0, else its repr (`2.5`)."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def reference(ctx: FileContext, qualified: str) -> tuple[str, cst.ImportFrom | None] | None:
    """How this file can name `qualified`: (expression text, ImportFrom to extend or None), or None."""
    local = ctx.imports.local_for(qualified)
    if local is not None:
        return local, None
    module, _, name = qualified.rpartition(".")
    statements = ctx.imports.from_imports.get(module)
    if statements:
        return name, statements[0]
    return None
