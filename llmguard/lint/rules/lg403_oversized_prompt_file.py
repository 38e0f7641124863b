"""LG403: a prompt template file over `max-prompt-tokens`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import libcst as cst

from llmguard.lint.budget import describe, over_budget
from llmguard.lint.context import FileContext
from llmguard.lint.documents import literal_path, read_call, resolve_path
from llmguard.lint.findings import Report
from llmguard.lint.index import Scope
from llmguard.lint.prompts import prompt_parts
from llmguard.lint.rules.base import Rule
from llmguard.lint.rules.lg401_oversized_prompt_literal import PROMPT_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from llmguard.policies.tokens import TokenCount


class OversizedPromptFile(Rule):
    code = "LG403"
    name = "oversized-prompt-file"
    summary = "A prompt template file is over `max-prompt-tokens` tokens."
    also = ("read",)
    what = """
Counts the tokens of prompt template files and flags those above `max-prompt-tokens`: files a
prompt loads by a literal path (`open("prompts/system.txt").read()`, `Path(__file__).parent /
"system.md"`) in an LLM call or a prompt-named constant, reported where they are loaded; and files
matching the `prompt-files` globs (e.g. `["prompts/**/*.txt"]`), reported on the file itself.
Literal paths are looked up next to the linted file, then under the config root.
"""
    why = """
A template file is sent with every call like an inline prompt, but grows unseen in review: a
few pasted examples can double the input cost of every request.
"""
    example = """
# prompts/system.txt holds 8,000 tokens of examples
SYSTEM_PROMPT = open("prompts/system.txt").read()
"""
    use_instead = """
# keep prompts/system.txt under the budget; move examples to retrieval or a cached prefix
SYSTEM_PROMPT = open("prompts/system.txt").read()
"""
    VALID = ('SYSTEM_PROMPT = open("no/such/file.txt").read()\n',)
    INVALID = ()  # needs a file on disk: tests/lint/test_rules.py covers it

    def check(self, ctx: FileContext) -> Iterator[Report]:
        limit = ctx.config.max_prompt_tokens
        seen: set[str] = set()
        for read, scope, anchor in self._reads(ctx):
            literal = literal_path(ctx, read, scope)
            path = resolve_path(ctx, literal) if literal is not None else None
            if literal is None or path is None:
                continue
            ctx.dependencies.add(str(path))
            if str(path) in seen:
                continue
            seen.add(str(path))
            count = template_tokens(path, ctx.config.prompt_model, limit, ctx.config.max_file_bytes)
            if count is not None:
                yield Report(
                    read,
                    f"prompt template {literal.removeprefix('__file__/')} is {describe(count)} tokens, "
                    f"over max-prompt-tokens={limit:,}",
                    anchor=anchor,
                )

    def _reads(self, ctx: FileContext) -> Iterator[tuple[cst.Call, Scope, cst.CSTNode | None]]:
        for name, value in ctx.index.module_constants:
            read = read_call(value)
            if read is not None and PROMPT_NAME.search(name):
                yield read, None, None
        for call in ctx.llm_calls:
            parts, _ = prompt_parts(ctx, call)
            for part in parts:
                target = ctx.follow(part, call.scope)
                read = read_call(target)
                if read is not None:
                    yield read, call.scope, (call.node if target is part else None)


def template_tokens(path: Path, model: str, limit: int, max_bytes: int) -> TokenCount | None:
    """The token count of a template file when over `limit`; None when under or unreadable."""
    try:
        data = path.read_bytes()[: max_bytes * 4]
    except OSError:
        return None
    return over_budget(data.decode("utf-8", errors="replace"), model, limit)
