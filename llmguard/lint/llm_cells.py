"""The `%%llm` cells of a notebook as call sites: provider, model, bound and prompt each would send.

Read the way `llmguard.magics.cell_llm` runs them, without importing IPython: the options of the
`%%llm` line, the session defaults set by `%llmguard llm ...` lines in the cells above (cells run
top to bottom), else the magic's own defaults. `{name}` placeholders are filled from variables at
run time, so they count as nothing here and make the prompt size a lower bound. The
`LLMGUARD_LLM_*` environment variables of the kernel are not known statically: the defaults
below are what a session without them uses.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from typing import Any

# the same as llmguard.magics.cell_llm (a test keeps them equal)
LLM_PROVIDERS = ("openai", "anthropic")
LLM_DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
LLM_DEFAULT_MAX_TOKENS = 1024

_SESSION_LINE = re.compile(r"^\s*%llmguard\s+llm(?:\s+(?P<args>.*))?$")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # raise instead of exiting
        raise ValueError(message)


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


def _magic_parser() -> _Parser:
    parser = _Parser(prog="%%llm", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")  # shows the help, calls nothing
    parser.add_argument("-m", "--model")
    parser.add_argument("--provider", choices=LLM_PROVIDERS)
    parser.add_argument("--system")
    parser.add_argument("--max-tokens", type=_positive)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("-o", "--out")
    parser.add_argument("--format")
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--base-url")
    return parser


def _session_parser() -> _Parser:
    parser = _Parser(prog="%llmguard llm", add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--provider", choices=LLM_PROVIDERS)
    parser.add_argument("--base-url")
    parser.add_argument("--max-tokens", type=_positive)
    return parser


LLM_MAGIC_PARSER = _magic_parser()
_SESSION_PARSER = _session_parser()


@dataclass
class LLMCell:
    cell: int  # 1-based, counting every cell
    provider: str
    model: str
    max_tokens: int
    prompt: str  # the static text: placeholders removed
    system: str | None
    complete: bool  # False when placeholders are filled at run time
    dry_run: bool


def llm_cells(cells: list[dict[str, Any]], code_cells: list[int]) -> tuple[list[LLMCell], list[str]]:
    """(the `%%llm` cells that would call a model, problems such as options the magic would reject)."""
    from llmguard.lint.notebooks import cell_source

    provider, model, max_tokens = "openai", None, LLM_DEFAULT_MAX_TOKENS
    found: list[LLMCell] = []
    problems: list[str] = []
    for index in code_cells:
        source = cell_source(cells[index])
        first, _, body = source.lstrip("\n").partition("\n")
        first = first.strip()
        if first.startswith("%%llm") and (len(first) == 5 or first[5].isspace()):
            try:
                args = LLM_MAGIC_PARSER.parse_args(shlex.split(first[5:]))
            except ValueError as exc:
                problems.append(f"cell {index + 1}: %%llm options not understood ({exc}); the cell would not run")
                continue
            if args.help:
                continue
            chosen = args.provider or provider
            name = args.model or model or LLM_DEFAULT_MODELS[chosen]
            if args.model is None and model is not None and args.provider and args.provider != provider:
                name = LLM_DEFAULT_MODELS[chosen]  # the session model belongs to the other provider
            prompt, complete = _static(body)
            system, system_complete = _static(args.system) if args.system else (None, True)
            if prompt:  # an empty prompt is refused by the magic before any call
                found.append(
                    LLMCell(
                        index + 1,
                        chosen,
                        name,
                        args.max_tokens or max_tokens,
                        prompt,
                        system or None,
                        complete and system_complete,
                        args.dry_run,
                    )
                )
            continue
        if first.startswith("%%"):
            continue
        for line in source.splitlines():
            match = _SESSION_LINE.match(line)
            if match is None:
                continue
            try:
                args = _SESSION_PARSER.parse_args(shlex.split(match.group("args") or ""))
            except ValueError:
                continue
            provider = args.provider or provider
            model = (args.model or None) if args.model is not None else model
            max_tokens = args.max_tokens or max_tokens
    return found, problems


def _static(template: str) -> tuple[str, bool]:
    """The template with `{name}` placeholders left out (filled at run time), and whether it had none."""
    complete = True

    def replace(match: re.Match[str]) -> str:
        nonlocal complete
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        complete = False
        return ""

    return _PLACEHOLDER.sub(replace, template).strip(), complete
