"""`python -m llmguard.lint lint|rule ...`: the linter's commands without the main `llmguard` CLI."""

from __future__ import annotations

import argparse
import sys

from llmguard.lint.cli import add_lint_arguments, add_rule_arguments, run_lint, run_rule


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmguard.lint", description="llmguard's static linter.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    lint = sub.add_parser("lint", help="find LLM call hazards in Python files and notebooks")
    add_lint_arguments(lint)
    lint.set_defaults(func=run_lint)
    rule = sub.add_parser("rule", help="show a rule's documentation")
    add_rule_arguments(rule)
    rule.set_defaults(func=run_rule)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
