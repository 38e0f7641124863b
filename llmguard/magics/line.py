"""`%llmguard ...`: look at and steer the running guard from a cell.

Subcommands change the running guard with `Guard.configure` (budget, limits, on/off) or session
tags (`tag`, `cache off`, `fresh`), so they take effect for the next call, in every thread.
"""

from __future__ import annotations

import argparse
import html
from typing import Any

from IPython.core.error import UsageError

import llmguard
from llmguard.magics import view as views
from llmguard.magics.cell_llm import PROVIDERS
from llmguard.magics.output import note, show, usd
from llmguard.magics.parsing import UsageParser, positive_int

CACHE_ACTIONS = ("on", "off", "clear", "stats")
TAG_FIELDS = ("tenant", "feature", "prompt_version", "user")


def build_parser() -> UsageParser:
    parser = UsageParser(prog="%llmguard", description="Look at and steer llmguard in this session.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    sub.add_parser("status", help="what the guard has done and what it enforces (the default)")
    p = sub.add_parser("budget", help="set the session budget: budget 5.00 | budget off")
    p.add_argument("amount", help="USD for this session, or off")
    p = sub.add_parser("limit", help="rate limits: limit MODEL --rpm 500 --tpm 200000 | limit MODEL --off | limit")
    p.add_argument("model", nargs="?", help="the model the limits are for")
    p.add_argument("--rpm", type=positive_int, help="requests per minute")
    p.add_argument("--tpm", type=positive_int, help="tokens per minute (prompt + max output)")
    p.add_argument("--off", action="store_true", help="remove this model's limits")
    p = sub.add_parser("tag", help="session-wide tags: tag --tenant acme --feature summary --prompt-version v3")
    for name in TAG_FIELDS:
        p.add_argument(
            "--" + name.replace("_", "-"), help=f"the {name.replace('_', ' ')} of every later call ('' removes it)"
        )
    p.add_argument("--clear", action="store_true", help="remove the session tags set here")
    p = sub.add_parser("cache", help="cache on | off | clear | stats")
    p.add_argument("action", choices=CACHE_ACTIONS)
    p = sub.add_parser("fresh", help="fresh [on] | fresh off: send calls again instead of replaying their answers")
    p.add_argument("state", nargs="?", choices=("on", "off"), default="on")
    sub.add_parser("widget", help="show the live widget (again) in this cell")
    p = sub.add_parser("report", help="this session's cost report, with a chart")
    p.add_argument(
        "--by", default="model", choices=("model", "cell", "feature", "tenant", "prompt_version", "provider")
    )
    sub.add_parser("lint", help="lint the cells run so far in this session")
    p = sub.add_parser("lint-on-run", help="lint each cell before it runs: on (warn) | off | block (stop the cell)")
    p.add_argument("mode", choices=("on", "off", "block"))
    sub.add_parser("off", help="let calls through untouched (not metered, limited or recorded)")
    sub.add_parser("on", help="guard calls again")
    p = sub.add_parser("llm", help="defaults for %%%%llm: llm --model M --provider P --base-url URL --max-tokens N")
    p.add_argument("--model")
    p.add_argument("--provider", choices=PROVIDERS)
    p.add_argument("--base-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 ('' resets)")
    p.add_argument("--max-tokens", type=positive_int)
    parser.subcommands = sub  # type: ignore[attr-defined]
    return parser


PARSER = build_parser()


def help_text() -> str:
    """The full help of `%llmguard`, each subcommand included (shown by `%llmguard?`)."""
    parts = [PARSER.format_help()]
    for name, sub in PARSER.subcommands.choices.items():  # type: ignore[attr-defined]
        parts.append(f"--- %llmguard {name}\n" + sub.format_help())
    return "\n".join(parts)


def run(ext: Any, line: str) -> None:
    args = PARSER.parse_argstring(line)
    command = args.command or "status"
    if command == "lint-on-run":
        ext.lint.set_mode(args.mode)
        note(f"llmguard lint-on-run: {args.mode}")
        return
    if command == "lint":
        _lint(ext)
        return
    if command == "llm":
        _llm_defaults(ext, args)
        return
    guard = llmguard.current()
    if guard is None:
        raise UsageError(
            "%llmguard: no guard is installed in this process: run %load_ext llmguard (or %reload_ext llmguard)"
        )
    handler = {
        "status": _status,
        "budget": _budget,
        "limit": _limit,
        "tag": _tag,
        "cache": _cache,
        "fresh": _fresh,
        "widget": _widget,
        "report": _report,
        "off": _off,
        "on": _on,
    }[command]
    handler(ext, guard, args)


def _status(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    view = views.collect(guard)
    settings = guard.settings
    ledger = guard.ledger
    lines = [views.spend_text(view), *views.detail_lines(view)]
    if view.get("last_refusal"):
        lines.append(views.refusal_text(view))
    tags = {k: v for k, v in llmguard.session_tags().items() if k not in ("cell",)}
    lines.append(
        "session tags: "
        + (", ".join(f"{k}={v}" for k, v in sorted(tags.items())) if tags else "none")
        + f" · cache {tags.get('cache', getattr(settings, 'cache', 'on'))}"
        + f" · lint-on-run {ext.lint.mode}"
    )
    lines.append(
        f"ledger: {ledger.path if ledger is not None and ledger.available else 'not kept'}"
        f" · timeout {settings.timeout_s}s · max attempts {settings.max_attempts}"
    )
    lines.append(views.store_text(guard))
    lines.append(ext.llm_defaults.describe())
    if ext.widget is not None and ext.widget.last_error:
        lines.append(f"widget updates failing: {ext.widget.last_error}")
    text = "llmguard status\n" + "\n".join("  " + line for line in lines)
    rows = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    show(text, f"<div class='llmguard-status' style='font-size:12px'><b>llmguard status</b>{rows}</div>")


def _budget(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    amount = args.amount.strip().lower().lstrip("$")
    if amount in ("off", "none"):
        guard.configure(budget_usd=None)
        note("llmguard: no session budget")
        return
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"%llmguard budget: {args.amount!r} is not an amount in USD above 0 (e.g. 5.00) or off\n"
            + PARSER.subcommands.choices["budget"].format_usage().strip()  # type: ignore[attr-defined]
        )
    guard.configure(budget_usd=value)
    spent = guard.budget.session.spent if guard.budget.session is not None else 0.0
    note(f"llmguard: session budget {usd(value)} ({usd(spent)} counted against it so far)")


def _limit(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    usage = PARSER.subcommands.choices["limit"].format_usage().strip()  # type: ignore[attr-defined]
    limits = dict(guard.settings.limits)
    if args.model is None:
        if args.rpm or args.tpm or args.off:
            raise UsageError("%llmguard limit: name the model the limits are for\n" + usage)
        shown = ", ".join(f"{m}: {spec}" for m, spec in sorted(limits.items())) or "none"
        note(f"llmguard limits: {shown}")
        return
    if args.off:
        if args.rpm or args.tpm:
            raise UsageError("%llmguard limit: --off removes the limits; do not give --rpm/--tpm with it\n" + usage)
        limits.pop(args.model, None)
        guard.configure(limits=limits)
        from llmguard.policies.limiter import LimitSpec

        guard.limiter.set_limit(args.model, LimitSpec(None, None, guard.settings.window_s))
        note(f"llmguard: no limits for {args.model}")
        return
    if not args.rpm and not args.tpm:
        raise UsageError("%llmguard limit: give --rpm and/or --tpm (or --off)\n" + usage)
    spec = dict(limits.get(args.model, {}))
    if args.rpm:
        spec["rpm"] = args.rpm
    if args.tpm:
        spec["tpm"] = args.tpm
    limits[args.model] = spec
    guard.configure(limits=limits)
    window = guard.settings.window_s
    per = "minute" if window == 60 else f"{window:g} s window"
    note(
        f"llmguard: {args.model} limited to "
        + ", ".join(f"{v:,} {k.upper()}" for k, v in spec.items())
        + f" (per {per})"
    )


def _tag(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    if args.clear:
        llmguard.set_session_tags(**{name: None for name in TAG_FIELDS})
    changes = {name: getattr(args, name) for name in TAG_FIELDS if getattr(args, name) is not None}
    if changes:
        llmguard.set_session_tags(**{k: (v if v != "" else None) for k, v in changes.items()})
    tags = {k: v for k, v in llmguard.session_tags().items() if k in TAG_FIELDS}
    note("llmguard session tags: " + (", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"))


def _cache(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    home = guard.settings.home_path
    if args.action == "off":
        llmguard.set_session_tags(cache="off")
        note("llmguard: cache off for this session (calls neither read nor store answers)")
        return
    if args.action == "on":
        llmguard.set_session_tags(cache=None)
        if getattr(guard.settings, "cache", "on") == "off":
            guard.configure(cache="on")
        note("llmguard: cache on")
        return
    from llmguard.cache import maintenance as cache

    # This kernel's answers wait up to 100 ms in the writer's batch (and are served from memory
    # meanwhile): store them first, or stats would miss them and clear would see them come back.
    layer = getattr(guard, "cache_layer", None)
    if layer is not None:
        layer.flush()
    if args.action == "clear":
        clear = getattr(cache, "cache_clear", None)
        if clear is None:
            raise UsageError("%llmguard cache clear: this llmguard has no response cache yet")
        removed = clear(home)
        note(f"llmguard: cache cleared ({removed} entries removed)")
        from llmguard.store import StoreUnavailable

        try:
            shared = cache.shared_cache_clear(guard.settings.store, guard.settings.namespace)
        except StoreUnavailable as exc:
            note(f"llmguard: the answers shared through {exc.label} were not removed: it cannot be reached")
            return
        if shared is not None:
            from llmguard.money import plural

            note(f"llmguard: {plural(shared[0], 'answer')} shared through {shared[1]} removed")
        return
    stats_of = getattr(cache, "cache_stats", None)
    if stats_of is None:
        raise UsageError("%llmguard cache stats: this llmguard has no response cache yet")
    stats = stats_of(home)
    formatter = getattr(cache, "format_stats", None)
    show(formatter(stats) if formatter is not None else str(stats))


def _fresh(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    """A session toggle: until `fresh off`, every call is sent and its answer replaces the stored one."""
    if args.state == "on":
        llmguard.set_session_tags(cache="refresh")
        note("llmguard: fresh answers: every call is sent again and replaces its stored answer (%llmguard fresh off)")
        return
    if llmguard.session_tags().get("cache") == "refresh":
        llmguard.set_session_tags(cache=None)
    note("llmguard: stored answers are replayed again")


def _widget(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    ext.show_widget()


def _report(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    from llmguard.magics.report_view import session_report

    text, html_text = session_report(guard, by=args.by)
    show(text, html_text)


def _off(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    guard.configure(enabled=False)
    note(
        "llmguard is OFF: calls go to the provider untouched (no limits, budget, cache or ledger). %llmguard on", "warn"
    )


def _on(ext: Any, guard: Any, args: argparse.Namespace) -> None:
    guard.configure(enabled=True)
    note("llmguard is on", "ok")


def _lint(ext: Any) -> None:
    from llmguard.magics.lint_on_run import lint_history, show_history_findings

    found = lint_history(ext.ip, ext.lint.config())
    cells = sum(1 for n, s in enumerate(ext.ip.history_manager.input_hist_raw) if n and s.strip())
    show_history_findings(found, cells)


def _llm_defaults(ext: Any, args: argparse.Namespace) -> None:
    defaults = ext.llm_defaults
    if args.provider is not None:
        defaults.provider = args.provider
    if args.model is not None:
        defaults.model = args.model or None
    if args.base_url is not None:
        defaults.base_url = args.base_url or None
    if args.max_tokens is not None:
        defaults.max_tokens = args.max_tokens
    note(defaults.describe())
