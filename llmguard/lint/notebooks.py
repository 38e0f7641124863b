"""Jupyter notebooks as one Python module: code cells joined, IPython syntax neutralised, rows mapped back.

Position scheme (the one every output format uses): `cell` is the 1-based index of the cell in the
notebook's full cell list (markdown and raw cells count, so it equals `nb.cells[cell - 1]` and what
you get counting cells from the top), `line` is the 1-based line inside that cell. SARIF and
GitHub annotations, which need a line of the `.ipynb` file itself, point at the JSON line that holds
that source line when the notebook is stored one source line per JSON line (as Jupyter writes it).

IPython syntax is neither parsed nor reported: a cell starting with a `%%` cell magic becomes blank
lines; a line magic (`%env X=1`), a shell line (`!pip install x`, `files = !ls`) or a help line
(`len?`) becomes `pass  # llmguard-magic`, which keeps every line where it was and keeps an
indented block valid.

Magics that run Python are linted as the Python they run: the body of a `%%time`, `%%timeit`,
`%%capture` or `%%prun` cell (its first line becomes the placeholder), and the statement after a
`%time`/`%timeit`/`%prun` line magic, written as `if 1:` padded to the magic's width so every
column stays where it was (`%time f()` -> `if 1: f()`). `--fix` leaves such lines alone
(`python_magics=False`): only their findings are reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from llmguard.lint.lines import split_lines

MAGIC_PLACEHOLDER = "pass  # llmguard-magic"
CELL_MARKER = "# llmguard-cell {index}"
_CELL_MARKER_RE = re.compile(r"^# llmguard-cell (\d+)$")
_MAGIC_RE = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!])")
# cell magics whose body IPython runs as Python in the user namespace
_PYTHON_CELL_MAGIC_RE = re.compile(r"^\s*%%(?:time|timeit|capture|prun)(?:\s|$)")
# `%time stmt`, `%timeit -n 10 -r 3 stmt`: group 1 is everything before the statement
_PYTHON_LINE_MAGIC_RE = re.compile(
    r"^(\s*%(?:time|timeit|prun)\s+(?:-[nrp]\s*\d+\s+|-[qoct]\s+|-[sTDlr]\s*\S+\s+)*)(?=[^\s-])"
)
_HELP_RE = re.compile(r"^\s*[\w.]+\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")


class NotebookError(ValueError):
    """The file is not a notebook we can read; the message says why."""


@dataclass
class Notebook:
    cells: list[dict[str, Any]]
    code_cells: list[int]  # 0-based indexes of the Python code cells
    raw: dict[str, Any] = field(default_factory=dict)


def load_notebook(text: str) -> Notebook:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"invalid notebook: not valid JSON ({exc})") from None
    except RecursionError:
        raise NotebookError("invalid notebook: JSON nested too deeply to read") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        if isinstance(data, dict) and "worksheets" in data:
            raise NotebookError(
                "notebook format 3 is not supported; convert it with `jupyter nbconvert --to notebook --nbformat 4`"
            )
        raise NotebookError("invalid notebook: no 'cells' list at the top level (is it nbformat 4 JSON?)")
    cells = data["cells"]
    code = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise NotebookError(f"invalid notebook: cell {index + 1} is not a JSON object")
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            if not isinstance(source, str | list) or (
                isinstance(source, list) and not all(isinstance(s, str) for s in source)
            ):
                raise NotebookError(f"invalid notebook: cell {index + 1} has a source that is not text")
            code.append(index)
    return Notebook(cells, code, data)


def is_python(nb: Notebook) -> bool:
    """False for notebooks whose kernel is another language (R, Julia, ...): nothing to lint."""
    meta = _mapping(nb.raw.get("metadata"))
    language = _mapping(meta.get("language_info")).get("name") or _mapping(meta.get("kernelspec")).get("language")
    return not isinstance(language, str) or language.lower() in ("python", "python3", "ipython", "")


def _mapping(value: Any) -> dict[str, Any]:
    """Metadata written by other tools can have any type; anything but an object counts as absent."""
    return value if isinstance(value, dict) else {}


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_python_cell_magic(source: str) -> bool:
    """A `%%time`-like cell: its body is Python IPython runs as usual."""
    return _PYTHON_CELL_MAGIC_RE.match(source) is not None


def neutralise(source: str, python_magics: bool = True) -> tuple[list[str], dict[int, str]]:
    """Lines of a cell with IPython syntax replaced; returns (lines, {line index: original line}).

    `python_magics`: lint the Python that `%%time` cells and `%time` lines run (see the module
    docstring); False replaces `%time` lines by the placeholder, as `--fix` needs.
    """
    lines = split_lines(source)
    replaced: dict[int, str] = {}
    first = 0
    if lines and lines[0].lstrip().startswith("%%"):
        if not is_python_cell_magic(lines[0]):
            return ["" for _ in lines], {i: line for i, line in enumerate(lines)}
        replaced[0] = lines[0]
        lines[0] = MAGIC_PLACEHOLDER
        first = 1
    in_string: str | None = None
    continuing = False
    indent = ""
    for i, line in enumerate(lines):
        if i < first:
            continue
        if python_magics and in_string is None and not continuing:
            magic = _PYTHON_LINE_MAGIC_RE.match(line)
            if magic is not None:
                prefix = magic.group(1)
                indent = prefix[: len(prefix) - len(prefix.lstrip())]
                lines[i] = indent + "if 1:".ljust(len(prefix) - len(indent)) + line[len(prefix) :]
                continue
        if in_string is None and (continuing or _MAGIC_RE.match(line) or _HELP_RE.match(line)):
            if not continuing:  # a continuation line (`!pip install \`) keeps the magic's own indent
                indent = line[: len(line) - len(line.lstrip())]
            replaced[i] = line
            lines[i] = indent + MAGIC_PLACEHOLDER
            continuing = line.rstrip().endswith("\\")
            continue
        for quote in ('"""', "'''"):
            if (in_string is None or in_string == quote) and line.count(quote) % 2 == 1:
                in_string = None if in_string == quote else quote
    return lines, replaced


@dataclass
class JoinedNotebook:
    """The code cells as one module, and the map from its rows back to (cell, line)."""

    text: str
    rows: list[tuple[int, int]]  # 0-based row -> (1-based cell index, 1-based line in cell)
    raw_lines: dict[int, tuple[int, bool]]  # cell -> (line of its first source line in the file, one per line)

    def locate(self, row: int) -> tuple[int, int]:
        """1-based row of the joined module -> (cell, line)."""
        if 1 <= row <= len(self.rows):
            return self.rows[row - 1]
        last_cell = self.rows[-1][0] if self.rows else 1
        return last_cell, max(1, row - len(self.rows))

    def file_line(self, cell: int, line: int) -> int:
        """The line of the .ipynb file that holds this cell line (best effort, for SARIF/GitHub)."""
        start, one_per_line = self.raw_lines.get(cell, (1, False))
        return start + line - 1 if one_per_line else start


def join(nb: Notebook, raw_text: str = "") -> JoinedNotebook:
    lines: list[str] = []
    rows: list[tuple[int, int]] = []
    for index in nb.code_cells:
        cell_lines, _ = neutralise(cell_source(nb.cells[index]))
        for number, line in enumerate(cell_lines, start=1):
            lines.append(line)
            rows.append((index + 1, number))
    return JoinedNotebook("\n".join(lines) + ("\n" if lines else ""), rows, _raw_source_lines(raw_text, len(nb.cells)))


def _raw_source_lines(raw_text: str, n_cells: int) -> dict[int, tuple[int, bool]]:
    """Where each cell's source starts in the JSON text, assuming one "source" key per cell, in order."""
    found: dict[int, tuple[int, bool]] = {}
    starts = [m.end() for m in re.finditer(r'"source"\s*:\s*', raw_text)]
    if len(starts) != n_cells:
        return found
    line, last = 1, 0
    for cell, offset in enumerate(starts, start=1):
        line += raw_text.count("\n", last, offset)
        last = offset
        if raw_text.startswith("[", offset):
            after = raw_text[offset + 1 : offset + 200].lstrip(" \t\r")
            found[cell] = (line + 1, True) if after.startswith("\n") else (line, False)
        else:
            found[cell] = (line, False)
    return found


def join_for_fix(nb: Notebook) -> tuple[str, dict[int, dict[int, str]]]:
    """Code cells joined with marker comments, so a fixed module splits back into its cells.

    Cells that are a `%%` cell magic are left out (their text is kept as it was), but for the
    `%%time`-like ones, whose body is Python; `%time` lines stay placeholders (never rewritten).
    """
    parts: list[str] = []
    replaced: dict[int, dict[int, str]] = {}
    for index in nb.code_cells:
        source = cell_source(nb.cells[index])
        parts.append(CELL_MARKER.format(index=index))
        if source.lstrip().startswith("%%") and not is_python_cell_magic(source):
            continue
        cell_lines, cell_replaced = neutralise(source, python_magics=False)
        replaced[index] = cell_replaced
        parts.extend(cell_lines)
    return "\n".join(parts) + "\n", replaced


def split_fixed(nb: Notebook, fixed: str, replaced: dict[int, dict[int, str]]) -> dict[int, str]:
    """The new source of each cell that changed, from a module made by `join_for_fix`."""
    chunks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in fixed.split("\n"):
        marker = _CELL_MARKER_RE.match(line)
        if marker:
            current = chunks.setdefault(int(marker.group(1)), [])
            continue
        if current is not None:
            current.append(line)
    changed: dict[int, str] = {}
    for index, new_lines in chunks.items():
        if index not in replaced:
            continue
        originals = replaced[index]
        old = cell_source(nb.cells[index])
        while new_lines and new_lines[-1] == "" and len(new_lines) > len(split_lines(old)):
            new_lines.pop()
        restored, magic = [], iter(sorted(originals.items()))
        for line in new_lines:
            if line.strip() == MAGIC_PLACEHOLDER:
                _, original = next(magic, (None, line))
                restored.append(original)
            else:
                restored.append(line)
        text = "\n".join(restored) + ("\n" if old.endswith("\n") else "")
        if text != old:
            changed[index] = text
    return changed


def write_cells(nb: Notebook, changed: dict[int, str]) -> str:
    """The notebook JSON with changed cell sources, written the way Jupyter writes it (indent 1)."""
    for index, text in changed.items():
        cell = nb.cells[index]
        cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text
    return json.dumps(nb.raw, indent=1, ensure_ascii=False) + "\n"
