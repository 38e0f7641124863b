"""Argument parsing for the magics: argparse that raises `UsageError` (with the usage line) instead of exiting."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.process import arg_split


class HelpShown(Exception):
    """`-h` was given: the help text is in `text`; the magic shows it and does nothing else."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class UsageParser(MagicArgumentParser):
    """A magic's parser: errors become `UsageError("<what is wrong>\\nusage: ...")`, `-h` shows help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action=_HelpAction, help="show this help and do nothing else")

    def parse_argstring(self, argstring: str, *, partial: bool = False) -> Any:
        """Split like a POSIX shell, so `--system 'two words'` and `--base-url ''` mean what they say."""
        argv = arg_split(argstring, posix=True, strict=True)
        return self.parse_known_args(argv) if partial else self.parse_args(argv)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")


class _HelpAction(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.pop("default", None)
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        raise HelpShown(parser.format_help())


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value
