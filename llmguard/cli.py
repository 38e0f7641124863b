"""`llmguard demo | sim | lint | rule | report`. Exit codes: 0 ok, 1 findings/failures, 2 usage errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmguard.lint.commands import add_command, add_lint_commands, run


def _home(args: argparse.Namespace) -> Path:
    from llmguard.config import load_settings

    if getattr(args, "home", None):
        return Path(args.home)
    return load_settings().home_path


def cmd_demo(args: argparse.Namespace) -> int:
    from llmguard.demo import run_demo

    return run_demo(home=args.home, calls=args.calls)


def cmd_cache(args: argparse.Namespace) -> int:
    import json

    from llmguard.cache import maintenance as cache

    home = _home(args)
    if args.action == "stats":
        stats = cache.cache_stats(home)
        print(json.dumps(stats, indent=2) if args.format == "json" else cache.format_stats(stats))
    elif args.action == "clear":
        print(f"llmguard: removed {cache.cache_clear(home)} cached answers from {cache.cache_dir(home)}")
        from llmguard.config import load_settings
        from llmguard.store import StoreUnavailable

        settings = load_settings()
        try:
            shared = cache.shared_cache_clear(settings.store, settings.namespace)
        except StoreUnavailable as exc:
            print(
                f"llmguard: the answers shared through {exc.label} were not removed: it cannot be reached ({exc.reason})"
            )
            return 1
        if shared is not None:
            from llmguard.money import plural

            print(f"llmguard: removed {plural(shared[0], 'answer')} shared through {shared[1]}")
    else:
        print(f"llmguard: pruned {cache.cache_prune(home)} expired or over-size entries from {cache.cache_dir(home)}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from llmguard.sim import cli as sim_cli

    return sim_cli.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmguard", description="Keep LLM API calls fast, bounded and cheap.")
    parser.add_argument("--version", action="version", version=f"llmguard {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a mixed batch against the embedded simulated provider")
    demo.add_argument("--home", help="LLMGUARD_HOME for the demo's ledger (default: ./.llmguard)")
    demo.add_argument("--calls", type=int, default=36, help="number of calls to send (default 36)")
    demo.set_defaults(func=cmd_demo)

    from llmguard.reporting import cli as report_cli

    add_command(
        sub,
        "report",
        "cost and latency breakdowns and alerts from the ledger",
        report_cli.add_report_arguments,
        report_cli.run_report,
    )
    add_command(
        sub,
        "check",
        "the production readiness checklist for a project",
        report_cli.add_check_arguments,
        report_cli.run_check,
    )

    cache_cmd = sub.add_parser("cache", help="response cache: stats, clear, prune")
    cache_cmd.add_argument("action", choices=("stats", "clear", "prune"))
    cache_cmd.add_argument("--home", help="LLMGUARD_HOME holding the cache (default: ./.llmguard)")
    cache_cmd.add_argument("--format", choices=("text", "json"), default="text")
    cache_cmd.set_defaults(func=cmd_cache)

    sim = sub.add_parser("sim", help="serve the simulated OpenAI/Anthropic provider on 127.0.0.1")
    try:
        from llmguard.sim import cli as sim_cli

        sim_cli.add_arguments(sim)
    except ImportError:
        pass
    sim.set_defaults(func=cmd_sim)

    add_lint_commands(
        sub,
        lint_help="find unbounded retries, missing timeouts, unlimited max tokens",
        rule_help="show a lint rule's documentation",
    )
    return parser


def _version() -> str:
    from llmguard import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """`llmguard ...`; parsing, exit codes and Ctrl-C/closed-pipe handling are shared with
    `python -m llmguard.lint` (llmguard/lint/commands.py)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
