"""Tables and lines that fit the terminal's width without cutting a number or a name short.

rich squeezes a table that is too wide by ellipsising its cells (`gpt-4…`, `0.025…`), which turns a
report into guesswork. Here a cell is never cut: a table that does not fit leaves out its least
important columns first (and says which), and when even the essential ones do not fit it is
stacked, one block per row. `Packed` lays out a line of parts that wraps only between parts.
Widths are decided when rich renders, so the same object fits a terminal, a file or a notebook.
Imported where it is used: `llmguard lint` builds the report parser and must not load rich.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

_PADDING = 2  # rich's default cell padding: one space on each side


@dataclass(frozen=True)
class Column:
    """A table column: `priority` 0 is always shown; higher numbers are left out first when narrow."""

    header: str
    priority: int = 0
    key: bool = False  # an identifier (model, feature, ...): left-aligned


@dataclass(frozen=True)
class _Row:
    cells: tuple[str, ...]
    style: str | None


class FittedTable:
    """A rich table whose cells are never truncated: see the module docstring."""

    def __init__(self, title: str, columns: Sequence[Column], caption: str | None = None) -> None:
        self.title = title
        self.columns = list(columns)
        self.caption = caption
        self.rows: list[_Row] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def add_row(self, *cells: str, style: str | None = None) -> None:
        self.rows.append(_Row(tuple(cells), style))

    def _low(self, i: int) -> int:
        """The narrowest column `i` can be: its widest cell, and its header's longest word."""
        words = self.columns[i].header.split() or [""]
        return max([cell_len(w) for w in words] + [cell_len(r.cells[i]) for r in self.rows])

    def _high(self, i: int) -> int:
        return max([cell_len(self.columns[i].header)] + [cell_len(r.cells[i]) for r in self.rows])

    def _need(self, shown: list[int]) -> int:
        """The width of a table of these columns at their narrowest, with rich's borders and padding."""
        return sum(self._low(i) + _PADDING for i in shown) + len(shown) + 1

    def _choose(self, width: int) -> list[int] | None:
        """The columns that fit in `width`, least important left out first; None when the essential ones do not."""
        shown = list(range(len(self.columns)))
        while self._need(shown) > width:
            optional = [i for i in shown if self.columns[i].priority > 0]
            if not optional:
                return None
            shown.remove(max(optional, key=lambda i: (self.columns[i].priority, i)))
        return shown

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        shown = self._choose(width)
        if shown is None:
            yield from self._stacked()
            return
        spare = width - self._need(shown)
        widths = {}
        for i in shown:  # headers that would wrap get room first, as far as it goes
            grow = min(spare, self._high(i) - self._low(i))
            widths[i] = self._low(i) + grow
            spare -= grow
        table = Table(title=self.title, caption=self.caption)
        for i in shown:
            column = self.columns[i]
            table.add_column(column.header, justify="left" if column.key else "right", width=widths[i])
        for row in self.rows:
            table.add_row(*[Text(row.cells[i]) for i in shown], style=row.style)
        yield table
        left_out = [c.header for i, c in enumerate(self.columns) if i not in shown]
        if left_out:
            names = [h + "," for h in left_out[:-1]] + left_out[-1:]
            yield Packed(["left out at this width:", *names], indent=2, style="dim")

    def _stacked(self) -> Iterable[Text | Packed]:
        """One block per row: its names on a line, then its figures, wrapped between figures."""
        yield Text(self.title, style="italic")
        keys = [i for i, c in enumerate(self.columns) if c.key]
        for row in self.rows:
            names = " · ".join(row.cells[i] for i in keys if row.cells[i])
            yield Text(names or "-", style=f"bold {row.style or ''}".strip(), overflow="fold")
            figures = [f"{c.header} {row.cells[i]}" for i, c in enumerate(self.columns) if not c.key and row.cells[i]]
            yield Packed(figures, sep=" · ", lead="  ", indent=2)
        if self.caption:
            yield Text(self.caption, style="dim")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        everything = sum(self._high(i) + _PADDING for i in range(len(self.columns))) + len(self.columns) + 1
        return Measurement(min(options.max_width, 20), min(options.max_width, everything))


class Packed:
    """Parts laid out left to right and wrapped only between parts (a part alone wider than the line
    is the one thing rich folds): a figure never parts from its label, a config line stays whole."""

    def __init__(
        self, parts: Sequence[str | Text], sep: str = " ", lead: str | Text = "", indent: int = 0, style: str = ""
    ) -> None:
        self.parts = [p if isinstance(p, Text) else Text(p, style=style) for p in parts]
        self.sep = sep
        self.lead = lead if isinstance(lead, Text) else Text(lead)
        self.indent = indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        lines: list[Text] = []
        line, empty = self.lead.copy(), True
        for part in self.parts:
            if not empty and line.cell_len + cell_len(self.sep) + part.cell_len > width:
                lines.append(line)
                line, empty = Text(" " * self.indent), True
            if not empty:
                line.append(self.sep)
            line.append_text(part)
            empty = False
        lines.append(line)
        yield Text("\n", overflow="fold").join(lines)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max([p.cell_len for p in self.parts] + [self.lead.cell_len])
        whole = self.lead.cell_len + sum(p.cell_len for p in self.parts) + cell_len(self.sep) * len(self.parts)
        return Measurement(min(widest + self.indent, options.max_width), min(whole, options.max_width))
