"""LG000: a file the linter needs to read but cannot parse."""

from __future__ import annotations

from collections.abc import Iterable

from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule


class ParseError(Rule):
    code = "LG000"
    name = "parse-error"
    summary = "A file could not be read or parsed, so it was not checked."
    literals = ()
    what = """
Reports a file that llmguard needed to check but could not: a syntax error, undecodable bytes, a
binary file, an invalid notebook (or one notebook cell, then the other cells are still checked), a
file over `max-file-bytes`, a path that cannot be read, or code "too complex to lint" (nested more
than 1,000 levels deep, or so much deeply nested code that parsing it would take minutes).
The rest of the run goes on. Files that no selected rule could match (no LLM SDK, tenacity or
backoff mentioned) are never parsed, so a syntax error there is left to your other tools.
"""
    why = """
A file that is not checked can hide every other hazard. Saying so is better than a clean report
that silently skipped it.
"""
    example = """
import openai

def ask(:
    ...
"""
    use_instead = """
import openai

def ask(question):
    ...
"""
    VALID = ("import openai\nclient = openai.OpenAI(timeout=30)\n",)
    INVALID = (Invalid("import openai\n\ndef ask(:\n    pass\n"),)

    def check(self, ctx: object) -> Iterable[Report]:
        return ()  # reported by the engine, which is the one that reads and parses files
