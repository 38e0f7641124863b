"""`llmguard report` and `llmguard check`: arguments, formats, exit codes (0 ok, 1 failed check, 2 usage
or a ledger that cannot be read); the terminal tables are drawn by `terminal` and `check_view`.

cli.py wires them in: `add_report_arguments(parser)` + `run_report(args)`, and
`add_check_arguments(parser)` + `run_check(args)`. The reporting modules are imported where they
are used: `llmguard lint` builds these parsers too and must not load the ledger.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmguard.reporting.errors import ReportError
from llmguard.reporting.terminal import alerts_panel, render_terminal, sparkline

if TYPE_CHECKING:
    from llmguard.reporting.filters import Filters

__all__ = ["add_check_arguments", "add_report_arguments", "run_check", "run_report", "sparkline"]

FORMATS = ("table", "json", "csv", "html", "jsonl")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="folder holding ledger.sqlite3 (default: LLMGUARD_HOME or ./.llmguard)")
    parser.add_argument(
        "--ledger",
        nargs="+",
        action="extend",
        metavar="PATH",
        help="report over these ledgers (ledger.sqlite3 files or LLMGUARD_HOME folders copied from several "
        "machines) merged, each call counted once; instead of --home",
    )
    parser.add_argument("--since", help="start of the range: 24h, 30m, 7d (ago) or an ISO time (UTC)")
    parser.add_argument("--until", help="end of the range (same forms as --since; default: now)")
    parser.add_argument("--last-run", action="store_true", help="only the most recent run")
    parser.add_argument("--run", dest="run_id", help="only this run id")
    parser.add_argument(
        "--by",
        default="model",
        help="group by one or more of: model, provider, feature, tenant, user, prompt_version, "
        "notebook, cell, day, hour, ... (comma-separated; default: model)",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="only calls with this dimension value, e.g. --where feature=summary (repeatable)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--out", help="write to this file instead of stdout")
    parser.add_argument("--alerts", action="store_true", help="show only the alerts")
    parser.add_argument(
        "--full",
        action="store_true",
        help="table format: add per call and cache, reliability and latency by group, steps, spend over "
        "time and the top cost drivers to the cost table (json, csv, html and jsonl always hold everything)",
    )
    parser.add_argument(
        "--window", help="alerts: the window compared with the one before it when no --since is given (default 1h)"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="sort every call for percentiles and cost drivers, even over ranges so large that they "
        "are otherwise estimated from a sample (slower)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="the project folder (or a file); default: .")
    parser.add_argument("--home", help="folder holding the project's ledger.sqlite3 (default: from its settings)")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _where(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ReportError(f"llmguard: --where {item!r} must look like DIM=VALUE, e.g. --where feature=summary")
        out[name.strip()] = value
    return out


@dataclass(frozen=True)
class _Request:
    """One `llmguard report` as asked: the ledger, the grouping and range, and what the alerts judge by."""

    ledger: Path
    by: list[str]
    filters: Filters
    settings: Any
    thresholds: dict[str, float]
    overrides: dict[str, Any]  # thresholds given on the command line (--window)
    now: float

    def alerts(self) -> list[Any]:
        from llmguard.reporting.alerts import evaluate

        return evaluate(self.ledger, self.filters, self.settings, self.thresholds, self.now)

    def compared(self) -> str:
        from llmguard.reporting.alerts import describe

        return describe(self.filters, self.thresholds)


def _request(args: argparse.Namespace) -> _Request | int:
    """The report asked for, or the exit code of a request that cannot be answered (its reason printed)."""
    from llmguard.config import ConfigError
    from llmguard.reporting.alerts import load_thresholds, project_settings, project_settings_warning
    from llmguard.reporting.db import check_readable
    from llmguard.reporting.filters import make_filters, parse_by
    from llmguard.reporting.timerange import parse_duration

    try:
        settings = project_settings()
        warning = project_settings_warning()
        if warning:
            print(warning, file=sys.stderr)
        home = Path(args.home) if getattr(args, "home", None) else settings.home_path
        ledger = home / "ledger.sqlite3"
        if getattr(args, "ledger", None):
            from llmguard.reporting.merge import merge_ledgers

            merged = merge_ledgers(args.ledger)
            print(merged.summary(), file=sys.stderr)
            ledger = merged.path
        if not ledger.exists():
            return _fail(
                f"llmguard: no ledger at {ledger}. Run some calls with the guard on (e.g. `llmguard demo`), "
                "or point --home / LLMGUARD_HOME at the folder that holds ledger.sqlite3."
            )
        check_readable(ledger)  # a damaged ledger is an error, not "0 calls"; a reader never moves it
        now = time.time()
        by = parse_by(args.by)
        filters = make_filters(
            ledger,
            since=args.since,
            until=args.until,
            last_run=args.last_run,
            run_id=getattr(args, "run_id", None),
            now=now,
            **_where(args.where),
        )
        overrides = {}
        if getattr(args, "window", None):
            overrides["window_s"] = parse_duration(args.window)
        thresholds = load_thresholds(overrides)
    except (ReportError, ConfigError) as exc:
        return _fail(str(exc))
    if args.last_run and filters.run_id is None:
        return _fail(f"llmguard: the ledger at {ledger} holds no calls yet, so there is no last run")
    return _Request(ledger, by, filters, settings, thresholds, overrides, now)


def run_report(args: argparse.Namespace) -> int:
    from llmguard.reporting.db import unreadable

    request = _request(args)
    if isinstance(request, int):
        return request
    out = _output(args)
    try:
        return _render(args, out, request)
    except sqlite3.Error as exc:  # damage deeper in the file than check_readable looks
        return _fail(unreadable(request.ledger, exc))
    except ReportError as exc:
        return _fail(str(exc))
    finally:
        if out is not sys.stdout:
            out.close()


def _render(args: argparse.Namespace, out: Any, request: _Request) -> int:
    """Write the report in the chosen format; 0 when written."""
    from llmguard.reporting import exports

    ledger, filters = request.ledger, request.filters
    if args.alerts:
        found = request.alerts()
        if args.format == "json":
            out.write(exports.to_json([a.to_dict() for a in found]) + "\n")
        else:
            _console(out).print(alerts_panel(found, request.compared()))
        return 0
    if args.format == "jsonl":
        import json

        for event in exports.iter_events(ledger, filters):
            out.write(json.dumps(event, default=str) + "\n")
        return 0
    if args.format == "csv":
        from llmguard.reporting.queries import breakdown

        out.write(exports.to_csv(breakdown(ledger, request.by, filters, exact=args.exact)))
        return 0
    if args.format == "html":
        _write_html(args, out, request)
        return 0
    from llmguard.reporting.build import BREAKDOWN_ONLY, PARTS, build_report

    # the table's default view shows the breakdown and the alerts only: the rest is not computed
    brief = args.format == "table" and not getattr(args, "full", False)
    parts = BREAKDOWN_ONLY if brief else PARTS
    rep = build_report(ledger, request.by, filters, alerts=request.alerts, exact=args.exact, parts=parts)
    if args.format == "json":
        out.write(exports.to_json(rep.to_dict()) + "\n")
    else:
        render_terminal(rep, _console(out), request.compared(), full=getattr(args, "full", False))
    return 0


def _write_html(args: argparse.Namespace, out: Any, request: _Request) -> None:
    from llmguard.reporting import html as report_html

    filters = request.filters
    fragment = report_html.report_html(
        request.ledger,
        by=request.by,
        since=filters.since,
        until=filters.until,
        run_id=filters.run_id,
        settings=request.settings,
        alert_thresholds=request.overrides or None,
        now=request.now,
        exact=args.exact,
        **dict(filters.where),
    )
    out.write(report_html.html_page(fragment))
    if args.out:
        print(f"llmguard: wrote {args.out}", file=sys.stderr)


def _output(args: argparse.Namespace) -> Any:
    return open(args.out, "w", encoding="utf-8") if args.out else sys.stdout


def _console(out: Any) -> Any:
    from rich.console import Console

    return Console(file=out, width=None if out is sys.stdout else 160)


# ---- check --------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    from llmguard.config import ConfigError
    from llmguard.reporting import readiness
    from llmguard.reporting.check_view import render_check
    from llmguard.reporting.exports import to_json

    path = Path(args.path)
    if not path.exists():
        return _fail(f"llmguard check: {path}: no such file or directory")
    try:
        result = readiness.check(path, home=getattr(args, "home", None))
    except (ConfigError, ReportError) as exc:
        return _fail(str(exc))
    if args.format == "json":
        print(to_json(result.to_dict()))
    else:
        render_check(result, _console(sys.stdout))
    return 1 if result.failed else 0
