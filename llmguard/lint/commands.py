"""The entry point both command lines share: `llmguard ...` (llmguard/cli.py) and `python -m llmguard.lint`.

It lives inside llmguard.lint because `python -m llmguard.lint` must load nothing outside the linter
(tests/lint/test_lint_import_light.py); the main CLI imports it from here. Importing it is cheap:
the engine (and libcst) load only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from llmguard.lint.cli import add_lint_arguments, add_rule_arguments, run_lint, run_rule

Handler = Callable[[argparse.Namespace], int]


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    handler: Handler,
) -> argparse.ArgumentParser:
    """A subcommand whose arguments `add_arguments` defines and whose work `handler` does."""
    parser = sub.add_parser(name, help=help_text)
    add_arguments(parser)
    parser.set_defaults(func=handler)
    return parser


def add_lint_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], lint_help: str, rule_help: str) -> None:
    """`lint` and `rule`, with the one-line help each command line shows for them."""
    add_command(sub, "lint", lint_help, add_lint_arguments, run_lint)
    add_command(sub, "rule", rule_help, add_rule_arguments, run_rule)


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse `argv`, run the chosen command and return its exit code.

    No command: the help, exit 2. Ctrl-C: 130. A reader that closed the pipe (`| head`): 0, quietly.
    """
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "func", None)
    if not handler:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
