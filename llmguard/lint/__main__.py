"""`python -m llmguard.lint lint|rule ...`: the linter's commands without the main `llmguard` CLI."""

from __future__ import annotations

import argparse
import sys

from llmguard.lint.commands import add_lint_commands, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmguard.lint", description="llmguard's static linter.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_lint_commands(
        sub, lint_help="find LLM call hazards in Python files and notebooks", rule_help="show a rule's documentation"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
