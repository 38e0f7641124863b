"""Lint one file: decode → text prefilter → guard → tree prefilter → libcst → rules → positions → suppressions.

The text prefilter (each rule's literals, some rules' shapes: prefilter.py) skips a file no selected
rule can match after a few substring searches. The guard (guard.py) compiles the rest to CPython's
own tree, keeping text that would crash or stall libcst away from it, and the tree prefilter
(treefilter.py) rules out more before libcst's far slower parse. Only files with findings pay for
positions (see positions.py). Work that recurses past Python's recursion limit runs again with a
deeper stack. Notebook cells are checked one by one first: a broken cell is reported once, the rest linted.
"""

from __future__ import annotations

import ast
import tokenize
import warnings
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import libcst as cst

from llmguard.lint import guard, sdk
from llmguard.lint.config import LintConfig
from llmguard.lint.context import FileContext
from llmguard.lint.findings import PARSE_ERROR, PARSE_ERROR_NAME, Finding, Report
from llmguard.lint.lines import split_lines
from llmguard.lint.notebooks import JoinedNotebook, Notebook, NotebookError, is_python, join, load_notebook
from llmguard.lint.positions import ranges_for
from llmguard.lint.rules import get_rule
from llmguard.lint.rules.base import Rule
from llmguard.lint.suppress import Suppressions, file_ignored
from llmguard.lint.treefilter import TreeFacts

_TOO_DEEP = "too complex to lint: nested too deeply for the linter (not checked)"


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)  # other files the result depends on
    parsed: bool = False
    internal_errors: list[str] = field(default_factory=list)  # linter bugs met here: never cached, exit code 2


@dataclass
class Analysis:
    """A parsed file and the rule reports that survived suppression (used by lint and by --fix)."""

    module: cst.Module
    context: FileContext
    reports: list[tuple[Rule, Report]]
    errors: list[Finding]
    internal_errors: list[str] = field(default_factory=list)


class Engine:
    """The selected rules, built once per run (and once per worker process)."""

    def __init__(self, config: LintConfig, codes: frozenset[str] | None = None) -> None:
        self.config = config
        self.codes = config.enabled_codes() if codes is None else codes
        self.rules: list[Rule] = [get_rule(code)() for code in sorted(self.codes) if code != PARSE_ERROR]
        self.report_parse_errors = PARSE_ERROR in self.codes
        literals = {literal for rule in self.rules for literal in rule.prefilter_literals()}
        self.literals = tuple(sorted(literals))
        self.target_names = tuple({t.name.rsplit(".", 1)[-1] for t in config.call_targets})

    # -- prefilter ---------------------------------------------------------------------------
    def candidates(self, text: str, path: str | None = None) -> list[Rule]:
        """The rules that could match this text at `path` (None: not known to be a test file); []
        means the file needs no parsing at all."""
        present = {literal for literal in self.literals if literal in text}
        if self.target_names and any(name in text for name in self.target_names):
            present.update(sdk.SDK_LITERALS)
        found = [rule for rule in self.rules if rule.may_match(present, text, self.config)]
        if path is not None and any(rule.skips_tests for rule in found) and self.config.skips_test_rules(path):
            found = [rule for rule in found if not rule.skips_tests]
        return found

    # -- entry points ------------------------------------------------------------------------
    def lint_bytes(self, data: bytes, path: str, kind: str, ignored: frozenset[str] = frozenset()) -> FileResult:
        if kind == "template":
            return self.lint_template(data, path, ignored)
        if kind == "notebook":
            text, error = decode(data, notebook=True)
            if text is None:
                return self._error(path, error or "cannot decode", ignored)
            try:
                nb = load_notebook(text)
            except NotebookError as exc:
                return self._error(path, str(exc), ignored)
            if not is_python(nb):
                return FileResult()
            joined = join(nb, text)
            if len(joined.text) > self.config.max_file_bytes:
                return self._error(path, _too_large(len(joined.text), self.config), ignored)
            result = self.lint_text(joined.text, path, joined, ignored)
            if not file_ignored(joined.text):
                extra = self.notebook_findings(nb, text, path, ignored)
                if extra:
                    result.findings = sorted(result.findings + extra, key=Finding.sort_key)
            return result
        if len(data) > self.config.max_file_bytes:
            return self._error(path, _too_large(len(data), self.config), ignored)
        if b"\0" in data:
            return self._error(path, "binary file (it contains NUL bytes), not Python source", ignored)
        text, error = decode(data)
        if text is None:
            return self._error(path, error or "cannot decode", ignored)
        return self.lint_text(text, path, None, ignored)

    def lint_text(
        self, text: str, path: str, notebook: JoinedNotebook | None = None, ignored: frozenset[str] = frozenset()
    ) -> FileResult:
        if file_ignored(text):
            return FileResult()
        analysis = self.analyze(text, path, notebook, ignored)
        if analysis is None:
            return FileResult()
        if isinstance(analysis, FileResult):
            return analysis
        findings = list(analysis.errors)
        findings.extend(self._findings(analysis, path, notebook, text))
        findings.sort(key=Finding.sort_key)
        return FileResult(
            findings, sorted(analysis.context.dependencies), parsed=True, internal_errors=analysis.internal_errors
        )

    def notebook_findings(self, nb: Notebook, raw: str, path: str, ignored: frozenset[str]) -> list[Finding]:
        """What rules find outside the joined code cells (saved outputs, markdown): `Rule.check_notebook`."""
        out = []
        for rule in self.rules:
            if rule.code in ignored or not any(literal in raw for literal in rule.notebook_literals):
                continue
            for hit in rule.check_notebook(nb.cells):
                out.append(
                    Finding(
                        rule.code,
                        rule.name,
                        hit.message,
                        path,
                        hit.line,
                        hit.column,
                        hit.line,
                        hit.end_column,
                        hit.cell,
                    )
                )
        return out

    def lint_template(self, data: bytes, path: str, ignored: frozenset[str] = frozenset()) -> FileResult:
        """A prompt template file (`prompt-files`): LG403 when it is over the token budget."""
        if "LG403" not in self.codes or "LG403" in ignored:
            return FileResult()
        from llmguard.lint.budget import describe, over_budget

        count = over_budget(
            data[: self.config.max_file_bytes * 4].decode("utf-8", errors="replace"),
            self.config.prompt_model,
            self.config.max_prompt_tokens,
        )
        if count is None:
            return FileResult()
        rule = get_rule("LG403")
        message = (
            f"prompt template is {describe(count)} tokens, over max-prompt-tokens="
            f"{self.config.max_prompt_tokens:,}: every call that sends it pays for it"
        )
        return FileResult([Finding("LG403", rule.name, message, path, 1, 1, 1, 1)])

    # -- analysis ----------------------------------------------------------------------------
    def analyze(
        self,
        text: str,
        path: str,
        notebook: JoinedNotebook | None = None,
        ignored: frozenset[str] = frozenset(),
        only_fixable: bool = False,
    ) -> Analysis | FileResult | None:
        """Parse and run the rules; None when no rule can match, a FileResult when parsing failed."""
        rules = [r for r in self.candidates(text, path) if r.code not in ignored and (r.fixable or not only_fixable)]
        if not rules:
            return None
        keep_errors = self.report_parse_errors and PARSE_ERROR not in ignored
        try:
            return guard.deep_retry(lambda: self._analyze(text, path, notebook, rules, keep_errors))
        except RecursionError:
            return FileResult([self._error_finding(path, _TOO_DEEP, 1, 1, notebook)] if keep_errors else [])

    def _analyze(
        self, text: str, path: str, notebook: JoinedNotebook | None, rules: list[Rule], keep_errors: bool
    ) -> Analysis | FileResult | None:
        errors: list[Finding] = []
        blamed: set[int] = set()  # notebook cells already reported and blanked
        if notebook is not None:
            text, errors, blamed = usable_cells(text, path, notebook)
        problem, tree = guard.inspect(text)
        if problem is not None:
            errors.append(self._error_finding(path, problem.message, problem.line, problem.column, notebook))
            return FileResult(errors if keep_errors else [])
        if tree is not None:  # the prefilter on CPython's tree (treefilter.py)
            facts = TreeFacts(tree)
            rules = [rule for rule in rules if rule.may_match_tree(facts)]
            if not rules and not keep_errors:  # libcst would only be asked whether it parses
                return None
        module = None
        while module is None:
            try:
                module = cst.parse_module(text)
            except RecursionError:
                raise
            except Exception as exc:  # noqa: BLE001 - ParserSyntaxError, native parser errors
                line, column, message = _syntax_error(text, exc)
                errors.append(self._error_finding(path, message, line, column, notebook))
                if notebook is None or not 1 <= line <= len(notebook.rows) or notebook.rows[line - 1][0] in blamed:
                    return FileResult(errors if keep_errors else [])
                cell = notebook.rows[line - 1][0]  # cells that only fail together: drop the one blamed
                blamed.add(cell)
                text = _blank_cell(text, notebook, cell)
        if not keep_errors:
            errors = []
        context = FileContext(module, text, path, self.config)
        reports: list[tuple[Rule, Report]] = []
        internal: list[str] = []
        for rule in rules:
            try:
                reports.extend((rule, report) for report in rule.check(context))
            except RecursionError:
                raise
            except Exception as exc:  # noqa: BLE001 - a rule bug must not stop the run
                message = f"internal error in rule {rule.code} ({type(exc).__name__}: {exc}); please report it"
                internal.append(message)
                errors.append(self._error_finding(path, message, 1, 1, notebook))
        if reports:
            reports = self._unsuppressed(module, text, reports)
        return Analysis(module, context, reports, errors, internal)

    def _unsuppressed(
        self, module: cst.Module, text: str, reports: list[tuple[Rule, Report]]
    ) -> list[tuple[Rule, Report]]:
        nodes = [r.node for _, r in reports] + [r.anchor for _, r in reports if r.anchor is not None]
        ranges = ranges_for(module, nodes)
        suppressions = Suppressions(split_lines(text))
        kept = []
        for rule, report in reports:
            report.position = ranges.get(id(report.node), (1, 0, 1, 0))
            lines = [report.position[0]]
            if report.anchor is not None and id(report.anchor) in ranges:
                lines.append(ranges[id(report.anchor)][0])
            if not suppressions.suppressed(rule.code, *lines):
                kept.append((rule, report))
        return kept

    def _findings(self, analysis: Analysis, path: str, notebook: JoinedNotebook | None, text: str) -> list[Finding]:
        out = []
        seen = set()
        for rule, report in analysis.reports:
            line, col, end_line, end_col = report.position or (1, 0, 1, 0)
            key = (rule.code, line, col, report.message)
            if key in seen:
                continue
            seen.add(key)
            cell = None
            if notebook is not None:
                cell, line_in_cell = notebook.locate(line)
                end_cell, end_in_cell = notebook.locate(end_line)
                line, end_line = line_in_cell, end_in_cell if end_cell == cell else line_in_cell
            fix = report.fix if report.edit is not None else None
            out.append(
                Finding(
                    rule.code,
                    rule.name,
                    report.message,
                    path,
                    line,
                    col + 1,
                    end_line,
                    end_col + 1,
                    cell,
                    report.confidence,
                    fix,
                )
            )
        return out

    def _error(self, path: str, message: str, ignored: frozenset[str]) -> FileResult:
        if not self.report_parse_errors or PARSE_ERROR in ignored:
            return FileResult()
        return FileResult([Finding(PARSE_ERROR, PARSE_ERROR_NAME, message, path, 1, 1, 1, 1)])

    def _error_finding(
        self, path: str, message: str, line: int, column: int, notebook: JoinedNotebook | None
    ) -> Finding:
        cell = None
        if notebook is not None:
            cell, line = notebook.locate(line)
        return Finding(PARSE_ERROR, PARSE_ERROR_NAME, message, path, line, column, line, column, cell)


def decode(data: bytes, notebook: bool = False) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not). Honours a PEP 263 coding line; strips a UTF-8 BOM."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        if notebook:
            return None, f"invalid notebook: not UTF-8 ({exc.reason} at byte {exc.start})"
        try:
            encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
            return data.decode(encoding), None
        except (SyntaxError, LookupError, UnicodeDecodeError):
            return None, (
                f"cannot decode as UTF-8 ({exc.reason} at byte {exc.start}) and no valid "
                "coding declaration; is it a binary file?"
            )


def _syntax_error(text: str, exc: Exception) -> tuple[int, int, str]:
    """(line, column, message) for a parse failure, using CPython's clearer message when it has one."""
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": not what we report
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as err:
        line = err.lineno or 1
        return line, max(1, err.offset or 1), f"syntax error: {err.msg} (not checked)"
    except (ValueError, RecursionError, MemoryError) as err:
        return 1, 1, f"cannot parse: {type(err).__name__}: {err} (not checked)"
    if isinstance(exc, cst.ParserSyntaxError):
        return exc.editor_line, exc.editor_column, f"syntax error: {exc.message} (not checked)"
    if isinstance(exc, RecursionError):
        return 1, 1, "cannot parse: nested too deeply for the parser (not checked)"
    return 1, 1, f"cannot parse: {type(exc).__name__}: {exc} (not checked)"


def usable_cells(text: str, path: str, notebook: JoinedNotebook) -> tuple[str, list[Finding], set[int]]:
    """The joined text with each cell that does not parse on its own blanked, and an LG000 for each.

    Checking cells one by one keeps a broken cell from being blamed on the ones after it (a stub
    `def f():` makes the next cell's first line "expected an indented block").
    """
    lines = text.split("\n")
    rows: dict[int, list[int]] = {}
    for row, (cell, _) in enumerate(notebook.rows):
        rows.setdefault(cell, []).append(row)
    errors: list[Finding] = []
    bad: set[int] = set()
    for cell, cell_rows in rows.items():
        problem = _cell_problem("\n".join(lines[r] for r in cell_rows) + "\n")
        if problem is None:
            continue
        bad.add(cell)
        line = min(max(1, problem.line), len(cell_rows))
        errors.append(
            Finding(
                PARSE_ERROR, PARSE_ERROR_NAME, problem.message, path, line, problem.column, line, problem.column, cell
            )
        )
        for r in cell_rows:
            lines[r] = ""
    return ("\n".join(lines) if bad else text), errors, bad


def _cell_problem(source: str) -> guard.Problem | None:
    problem, error = guard.verdict(source)
    if problem is not None or error is None:
        return problem
    try:  # CPython rejects it; libcst may still read newer syntax than this interpreter's
        cst.parse_module(source)
        return None
    except RecursionError:
        raise
    except Exception:  # noqa: BLE001 - ParserSyntaxError, native parser errors
        return guard.Problem(f"syntax error: {error.msg} (not checked)", error.lineno or 1, max(1, error.offset or 1))


def _blank_cell(text: str, notebook: JoinedNotebook, cell: int) -> str:
    lines = text.split("\n")
    for row, (owner, _) in enumerate(notebook.rows):
        if owner == cell and row < len(lines):
            lines[row] = ""
    return "\n".join(lines)


def _too_large(size: int, config: LintConfig) -> str:
    return (
        f"file too large to lint ({size / 1e6:.1f} MB > max-file-bytes {config.max_file_bytes / 1e6:.1f} MB); "
        "raise max-file-bytes or exclude it (not checked)"
    )


def engine_for(config: LintConfig, codes: frozenset[str] | None = None, _cache: dict[Any, Engine] = {}) -> Engine:  # noqa: B006
    """One Engine per (config, codes) per process."""
    key = (config, codes)
    engine = _cache.get(key)
    if engine is None:
        if len(_cache) > 8:
            _cache.clear()
        engine = _cache[key] = Engine(config, codes)
    return engine
