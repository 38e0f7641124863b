"""What a lint run reports: `Finding` (public, serialisable, cacheable) and `Report` (a rule's raw hit).

Positions are 1-based lines and 1-based columns (code points), as SARIF and most editors count.
In a notebook, `cell` is the 1-based index of the cell in the notebook's full cell list (markdown
and raw cells count, so it is what you get counting cells from the top) and `line` is the 1-based
line inside that cell; in a `.py` file `cell` is None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PARSE_ERROR = "LG000"
PARSE_ERROR_NAME = "parse-error"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    name: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    cell: int | None = None
    confidence: str = "high"  # "high": names resolved; "low": matched by the SDK's method shape only
    fix: str | None = None  # what `--fix` would do, when a safe fix exists

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.code,
            self.name,
            self.message,
            self.path,
            self.line,
            self.column,
            self.end_line,
            self.end_column,
            self.cell,
            self.confidence,
            self.fix,
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (self.path, self.cell or 0, self.line, self.column, self.code)


@dataclass(slots=True)
class Report:
    """A rule's hit on a node, before positions, notebooks and suppressions are applied.

    `anchor` is an enclosing node (usually the call) whose first line also accepts a suppression
    comment, so `# noqa` on the first line of a multi-line call covers a keyword inside it.
    """

    node: Any
    message: str
    anchor: Any = None
    confidence: str = "high"
    fix: str | None = None
    edit: Any = None  # how to fix it (llmguard.lint.edits); None when no safe fix applies here
    position: tuple[int, int, int, int] | None = None  # (line, col0, end_line, end_col0) if known
    extra: dict[str, Any] = field(default_factory=dict)
