"""Lint each cell before it runs, and `%llmguard lint` for every cell run so far.

Findings are displayed by the `pre_run_cell` hook, so they appear above the cell's own output, as
one short line per finding with its rule code. `block` mode stops a cell with findings: IPython
offers no way to cancel a cell from `pre_run_cell`, but an AST transformer may raise
`InputRejected`, which IPython reports without running the cell.

A cell is linted with what earlier cells imported and defined put before it (`lint_context.py`),
so `OpenAI()` is flagged when `from openai import OpenAI` ran in another cell. Inside a running
guard, LG201 says the guard caps the timeout at `timeout_s` instead of the SDK's 600 s.

The linter (libcst) is imported only when a cell mentions something a rule looks for: the
linter's literal prefilter drops plain cells without parsing them.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import json
from typing import Any

from IPython.core.error import InputRejected

import llmguard
from llmguard.magics.lint_context import CellDefinitions
from llmguard.magics.output import code_html, show

MODES = ("on", "off", "block")
_SKIP_CODES = frozenset({"LG000"})  # a cell that does not parse: Python says so itself


class LintBlocked(InputRejected):
    """A cell stopped by `%llmguard lint-on-run block`."""

    def _render_traceback_(self) -> list[str]:
        return [f"LintBlocked: {self}"]


def _body_and_offset(raw_cell: str) -> tuple[str, int] | None:
    """The Python part of a cell and how many lines precede it; None for non-Python cell magics."""
    stripped = raw_cell.lstrip()
    if not stripped.startswith("%%"):
        return raw_cell, 0
    first, _, rest = raw_cell.partition("\n")
    if first.strip().split()[0] in ("%%llmguard", "%%time", "%%timeit", "%%capture", "%%prun"):
        return rest, 1
    return None  # %%llm prompts, %%bash, %%html...: not Python


def neutralised(source: str) -> str:
    """Line magics and shell lines blanked (line numbers kept), as the notebook linter does."""
    try:
        from llmguard.lint.notebooks import neutralise
    except ImportError:  # an older linter: lint the text as it is
        return source
    lines, _ = neutralise(source)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


class LintOnRun:
    """The `pre_run_cell` linter and its block switch."""

    def __init__(self, ip: Any, mode: str = "on") -> None:
        self.ip = ip
        self.mode = mode
        self._config: Any = None
        self._config_error: str | None = None
        self._blocked: str | None = None  # the message of a cell to stop, for the AST transformer
        self.blocker = _Blocker(self)
        self.last_findings: list[Any] = []
        self.definitions = CellDefinitions()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"lint-on-run mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode

    def config(self) -> Any:
        if self._config is None:
            from llmguard.lint import LintConfig, load_config

            try:
                self._config = load_config(".")
            except Exception as exc:  # a broken [tool.llmguard.lint]: say so once, lint with defaults
                self._config_error = str(exc)
                self._config = LintConfig()
        return self._config

    def lint(self, raw_cell: str) -> list[Any]:
        """Findings for one cell's source (positions are lines of the cell as typed)."""
        part = _body_and_offset(raw_cell)
        if part is None or not part[0].strip():
            return []
        source, offset = part
        from llmguard.lint import lint_source

        body = neutralised(source)
        prefix = self.definitions.prefix_for(body)
        findings = lint_source(prefix + body, path="<cell>", config=self.config())
        shift = prefix.count("\n") - offset  # the prefix's lines out, the magic line in
        findings = [
            dataclasses.replace(f, line=f.line - shift, end_line=f.end_line - shift)
            for f in findings
            if f.code not in _SKIP_CODES and f.line - shift > offset
        ]
        return in_running_guard(findings)

    def post_run_cell(self, result: Any) -> None:
        """Remember what a cell that ran imported and defined, for linting the next cells."""
        info = getattr(result, "info", None)
        if info is None or not getattr(info, "store_history", True) or result.error_before_exec is not None:
            return
        part = _body_and_offset(getattr(info, "raw_cell", None) or "")
        if part is None or not part[0].strip():
            return
        try:
            source = self.ip.transform_cell(part[0])
        except Exception:  # IPython could not read it: it did not run as Python either
            return
        self.definitions.remember(source)

    def pre_run_cell(self, info: Any) -> None:
        self._blocked = None
        self.last_findings = []
        if self.mode == "off" or not getattr(info, "store_history", True):
            return
        raw = getattr(info, "raw_cell", None) or ""
        if raw.lstrip().startswith(("%llmguard lint", "%unload_ext", "%reload_ext")):
            return
        try:
            findings = self.lint(raw)
        except Exception as exc:  # the linter must never stop a cell by accident
            show(f"llmguard lint could not check this cell: {type(exc).__name__}: {exc}")
            return
        self.last_findings = findings
        if not findings:
            return
        show_findings(findings, blocking=self.mode == "block", config_error=self._config_error)
        self._config_error = None
        if self.mode == "block":
            codes = ", ".join(sorted({f.code for f in findings}))
            self._blocked = (
                f"llmguard: this cell was not run: lint findings {codes} (see above). Fix them, add "
                "`# noqa: CODE` on the line, or `%llmguard lint-on-run on` to warn without blocking."
            )


def in_running_guard(findings: list[Any]) -> list[Any]:
    """Findings as they read where a guard runs: LG201 names the guard's `timeout_s` cap."""
    guard = llmguard.current()
    timeout_s = guard.settings.timeout_s if guard is not None and guard.enabled else None
    if timeout_s is None or not any(f.code == "LG201" for f in findings):
        return findings
    from llmguard.lint.rules.lg201_client_without_timeout import message_under_guard

    return [
        dataclasses.replace(f, message=message_under_guard(f.message, timeout_s)) if f.code == "LG201" else f
        for f in findings
    ]


class _Blocker(ast.NodeTransformer):
    """Rejects the cell that `pre_run_cell` flagged in block mode (once)."""

    def __init__(self, owner: LintOnRun) -> None:
        self.owner = owner

    def visit(self, node: ast.AST) -> ast.AST:
        message, self.owner._blocked = self.owner._blocked, None
        if message is not None:
            raise LintBlocked(message)
        return node


def _finding_line(finding: Any, where: str) -> str:
    return f"{where} {finding.code} {finding.name}: {finding.message}"


def show_findings(findings: list[Any], blocking: bool = False, config_error: str | None = None) -> None:
    """One short warning per finding, with its rule code and line."""
    head = "llmguard lint (cell blocked)" if blocking else "llmguard lint"
    lines = [_finding_line(f, f"line {f.line}:") for f in findings]
    tail = "silence one with `# noqa: CODE`, all with `%llmguard lint-on-run off`"
    if config_error:
        lines.append(f"(lint config ignored: {config_error})")
    text = "\n".join([f"{head}: {len(findings)} finding{'s' if len(findings) != 1 else ''}", *lines, tail])
    items = "".join(
        f"<div><code>{html.escape(f.code)}</code> line {f.line}: {code_html(f.message)}"
        f' <span style="opacity:0.6">({html.escape(f.name)})</span></div>'
        for f in findings
    )
    extra = f"<div>{code_html(lines[-1])}</div>" if config_error else ""
    colour = "#c23030" if blocking else "#d9822b"
    html_text = (
        f'<div class="llmguard-lint" style="border-left:3px solid {colour};padding:2px 8px;font-size:12px">'
        f"<b>{html.escape(head)}</b>{items}{extra}"
        f'<div style="opacity:0.6">{code_html(tail)}</div></div>'
    )
    show(text, html_text)


def lint_history(ip: Any, config: Any = None) -> list[tuple[int, Any]]:
    """Findings in the cells run so far, as (execution count, finding), linted as one notebook.

    The cells are joined the way the notebook linter joins a saved notebook, so a client created in
    one cell and called in a loop in another is still recognised.
    """
    from llmguard.lint import lint_notebook_source

    history = list(getattr(ip.history_manager, "input_hist_raw", []) or [])
    numbered = [(number, source) for number, source in enumerate(history) if number > 0 and source.strip()]
    numbered = [(n, s) for n, s in numbered if not s.lstrip().startswith("%llmguard lint")]
    cells: list[dict[str, Any]] = []
    for _, source in numbered:
        part = _body_and_offset(source)
        body = source if part is None else ("\n" * part[1]) + part[0]
        if part is None:
            body = "\n" * source.count("\n")
        cells.append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": body})
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    findings = lint_notebook_source(json.dumps(notebook), path="<notebook>", config=config)
    found = in_running_guard([f for f in findings if f.code not in _SKIP_CODES and f.cell])
    return [(numbered[f.cell - 1][0], f) for f in found]


def show_history_findings(found: list[tuple[int, Any]], cells: int) -> None:
    if not found:
        show(f"llmguard lint: no findings in the {cells} cells run so far")
        return
    lines = [_finding_line(f, f"In [{number}] line {f.line}:") for number, f in found]
    text = "\n".join([f"llmguard lint: {len(found)} findings in the cells run so far", *lines])
    rows = "".join(
        f"<tr><td>In&nbsp;[{number}]</td><td>{f.line}</td><td><code>{html.escape(f.code)}</code></td>"
        f"<td>{code_html(f.message)}</td></tr>"
        for number, f in found
    )
    html_text = (
        f"<div class='llmguard-lint'><b>llmguard lint</b>: {len(found)} findings in the cells run so far"
        f"<table><tr><th>cell</th><th>line</th><th>rule</th><th>finding</th></tr>{rows}</table></div>"
    )
    show(text, html_text)
