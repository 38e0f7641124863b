"""`llmguard lint` and `llmguard rule`: argument definitions and handlers for the main CLI.

Exit codes: 0 no findings, 1 findings (LG000 included; with `--diff`: changes to apply),
2 usage or config error (bad arguments, invalid `[tool.llmguard.lint]`, a path that does not exist,
a folder that cannot be read) or a linter bug (an internal error, named with the file it hit), so a
crash never looks like an ordinary "findings" result.
Importing this module is cheap: the engine (and libcst) load only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from llmguard.lint.config import LintConfig
    from llmguard.lint.rules.base import Rule

FORMATS = ("text", "json", "sarif", "github")


def _codes(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_lint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Find unbounded retries, missing or huge timeouts, unlimited max tokens and oversized "
        "prompts in Python files and notebooks. Exit codes: 0 clean, 1 findings, 2 usage/config "
        "error. Notebook findings read `file:cell N:line:col` (N counts every cell from 1, "
        "markdown included; line counts from 1 inside the cell)."
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to lint (default: .)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--output-file", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--statistics", action="store_true", help="show counts per rule instead of each finding")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    parser.add_argument("--fix", action="store_true", help="apply the safe fixes, then report what is left")
    parser.add_argument("--diff", action="store_true", help="show the fixes as a diff without writing them")
    parser.add_argument(
        "--costs",
        action="store_true",
        help="print the static cost map (every LLM call site and its worst-case cost) instead",
    )
    parser.add_argument(
        "--select",
        action="append",
        type=_codes,
        metavar="CODES",
        help="comma-separated codes or prefixes to check (replaces the configured select)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        type=_codes,
        metavar="CODES",
        help="comma-separated codes or prefixes to skip (added to the configured ignore)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="read settings from FILE instead of the nearest pyproject.toml"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=0,
        metavar="N",
        help="worker processes for large trees (default 0: one per CPU; 1: no workers)",
    )
    parser.add_argument("--concise", action="store_true", help="text format: one line per finding")
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="walk into symbolic links to folders (each folder is still visited once)",
    )


def _flatten(values: list[list[str]] | None) -> list[str]:
    return [code for group in values or [] for code in group]


def run_lint(args: argparse.Namespace) -> int:
    from llmguard.lint.config import LintConfigError, load_config

    err = sys.stderr
    if args.jobs < 0:
        print("llmguard lint: --jobs must be 0 (one per CPU) or a positive number", file=err)
        return 2
    if args.costs and (args.fix or args.diff):
        print("llmguard lint: --costs cannot be combined with --fix or --diff", file=err)
        return 2
    paths = args.paths or ["."]
    missing = [p for p in paths if not os.path.lexists(p)]
    for path in missing:
        print(
            f"llmguard lint: {path}: no such file or directory (looked for {os.path.abspath(path)}); "
            "give an existing file or folder, e.g. `llmguard lint .`",
            file=err,
        )
    paths = [p for p in paths if p not in missing]
    if not paths:  # nothing left to check: the errors above are the whole answer
        return 2
    try:
        if args.config:
            config = load_config(config_file=args.config)
        else:
            first = os.path.abspath(paths[0])
            config = load_config(first if os.path.isdir(first) else os.path.dirname(first))
        config = config.with_cli(_flatten(args.select), _flatten(args.ignore))
        config.enabled_codes()
    except LintConfigError as exc:
        print(f"llmguard lint: config error: {exc}", file=err)
        return 2
    try:
        out, close = _output(args)
    except OSError as exc:
        print(f"llmguard lint: cannot write {args.output_file}: {exc.strerror or exc}", file=err)
        return 2
    try:
        code = _costs(args, config, paths, out) if args.costs else _lint(args, config, paths, out, len(missing))
        return 2 if missing else code
    except Exception as exc:  # noqa: BLE001 - a linter bug: exit 2, never 1 (which means "findings")
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"llmguard lint: internal error: {type(exc).__name__}: {exc} (at {os.path.basename(where.filename)}:"
            f"{where.lineno}); please report it",
            file=err,
        )
        return 2
    finally:
        if close:
            out.close()


def _output(args: argparse.Namespace) -> tuple[TextIO, bool]:
    if not args.output_file:
        return sys.stdout, False
    return open(args.output_file, "w", encoding="utf-8"), True  # noqa: SIM115 - closed by run_lint


def _console(out: TextIO) -> Console:
    from rich.console import Console

    return Console(file=out, highlight=False, soft_wrap=True, emoji=False)


def _lint(args: argparse.Namespace, config: LintConfig, paths: list[str], out: TextIO, missing: int = 0) -> int:
    from llmguard import __version__
    from llmguard.lint.runner import run

    result = run(
        paths,
        config,
        use_cache=not args.no_cache,
        jobs=args.jobs,
        fix=args.fix and not args.diff,
        diff=args.diff,
        follow_symlinks=getattr(args, "follow_symlinks", False),
    )
    for message in result.errors + result.warnings:
        print(message, file=sys.stderr)
    if args.diff:
        out.write("".join(result.diffs))
        count = result.fixed
        print(
            f"Would fix {count} finding{'s' if count != 1 else ''}." if count else "No fixes available.",
            file=sys.stderr,
        )
        if result.errors:
            return 2
        return 1 if count and not args.exit_zero else 0
    if args.fix and result.fixed:
        print(f"Fixed {result.fixed} finding{'s' if result.fixed != 1 else ''}.", file=sys.stderr)
    findings = result.findings
    if args.format == "json":
        from llmguard.lint.formats import json as json_format

        out.write(json_format.render_statistics(findings) if args.statistics else json_format.render(findings))
    elif args.format == "sarif":
        from llmguard.lint.formats import sarif

        out.write(sarif.render(findings, version=__version__, config=config))
    elif args.format == "github":
        from llmguard.lint.formats import github

        out.write(github.render(findings))
    else:
        from llmguard.lint.formats import text

        console = text.console_for(out)
        if findings or not (missing or result.errors):
            text.render(findings, console, concise=args.concise, statistics=args.statistics, files=result.files)
        else:  # not "All checks passed!": some of what was asked for was not checked
            files = f"{result.files} file{'s' if result.files != 1 else ''}"
            lost = f"{missing} path was" if missing == 1 else f"{missing} paths were"
            text.say(
                console,
                f"No findings in {files} checked; {lost} not found (see above)."
                if missing
                else f"No findings in {files} checked, but there were errors (see above).",
            )
    if result.errors:
        return 2
    return 1 if findings and not args.exit_zero else 0


def _costs(args: argparse.Namespace, config: LintConfig, paths: list[str], out: TextIO) -> int:
    from llmguard.lint.costs import cost_map, render_json, render_text

    rows, problems = cost_map(paths, config)
    for problem in problems:
        print(f"llmguard lint --costs: {problem}", file=sys.stderr)
    if args.format == "json":
        out.write(render_json(rows))
    elif args.format == "text":
        render_text(rows, _console(out))
    else:
        print(
            f"llmguard lint --costs: --format {args.format} is not available for the cost map (use text or json)",
            file=sys.stderr,
        )
        return 2
    return 2 if any("no such file" in p or "cannot read folder" in p or "internal error" in p for p in problems) else 0


# -- llmguard rule ---------------------------------------------------------------------------------
def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Show a lint rule's documentation (What it does / Why is this bad / Example / Use instead)."
    parser.add_argument("code", nargs="?", help="a rule code such as LG201 (or its name, e.g. client-without-timeout)")
    parser.add_argument("--all", action="store_true", help="list every rule")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run_rule(args: argparse.Namespace) -> int:
    import json

    from llmguard.lint.rules import all_rules

    rules = all_rules()
    if args.all:
        if args.format == "json":
            print(json.dumps([_rule_json(r) for r in rules], indent=2))
        else:
            for rule in rules:
                marker = "[*]" if rule.fixable else "   "
                print(f"{rule.code}  {marker}  {rule.name:<28} {rule.summary}")
            print("\n[*] fixable with `llmguard lint --fix`.  `llmguard rule CODE` shows a rule's documentation.")
        return 0
    if not args.code:
        print("llmguard rule: give a rule code (e.g. `llmguard rule LG201`) or --all", file=sys.stderr)
        return 2
    wanted = args.code.strip()
    for rule in rules:
        if wanted.upper() == rule.code or wanted.lower() == rule.name:
            print(json.dumps(_rule_json(rule), indent=2) if args.format == "json" else rule.docs(), end="\n")
            return 0
    names = [r.code for r in rules] + [r.name for r in rules]
    import difflib

    hint = difflib.get_close_matches(wanted.upper() if wanted[:2].lower() == "lg" else wanted, names, n=1)
    extra = f" (did you mean {hint[0]}?)" if hint else ""
    print(f"llmguard rule: unknown rule {wanted!r}{extra}; `llmguard rule --all` lists them", file=sys.stderr)
    return 2


def _rule_json(rule: type[Rule]) -> dict[str, object]:
    return {"code": rule.code, "name": rule.name, "summary": rule.summary, "fixable": rule.fixable, "docs": rule.docs()}
