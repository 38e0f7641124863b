"""LG401: a prompt literal over `max-prompt-tokens`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.budget import describe, over_budget
from llmguard.lint.config import LintConfig
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.prefilter import PROMPT_ASSIGNMENT, could_exceed
from llmguard.lint.prompts import prompt_parts
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import static_text

PROMPT_NAME = re.compile("|".join(sdk.PROMPT_NAME_WORDS), re.IGNORECASE)


def _big_prompt(n: int) -> str:
    return '"""\n' + "Answer the question using only the context below. Be concise and cite sources.\n" * n + '"""'


class OversizedPromptLiteral(Rule):
    code = "LG401"
    name = "oversized-prompt-literal"
    summary = "A prompt literal is over `max-prompt-tokens` (default 2000) tokens."
    what = """
Counts the tokens of prompt literals with tiktoken, the way the runtime guard counts them, and
flags those above `max-prompt-tokens`. Prompt literals are: module-level string constants named
like a prompt (`*PROMPT*`, `*TEMPLATE*`, `*INSTRUCTION*`, `SYSTEM_MESSAGE`), and any value passed
to an LLM call as message `content`, `system`, `prompt`, `input` or `instructions`, including
names bound to such values. Strings, f-strings (literal parts only), implicit and `+`
concatenation, `textwrap.dedent(...)`, `.strip()`, `.format(...)` and `"sep".join([...])` are read.
The call's literal `model=` picks the tokenizer (else `prompt-model`).
"""
    why = """
Every call pays for the whole prompt, every time: a 6,000-token system prompt sent 10,000 times a
day is 60 million input tokens. Large prompts also add latency, crowd the context window and
usually mean instructions that should be shortened, cached or retrieved on demand.
"""
    example = """
SYSTEM_PROMPT = \"\"\"You are a support agent. ... (9,000 tokens of policy text) ...\"\"\"
"""
    use_instead = """
SYSTEM_PROMPT = \"\"\"You are a support agent. Follow the policy excerpts provided with each question.\"\"\"
# and retrieve only the relevant policy sections per question
"""
    VALID = (
        'SYSTEM_PROMPT = "You are a concise assistant."\n',
        "GREETING = " + _big_prompt(300) + "\n",
        "from openai import OpenAI\nclient = OpenAI(timeout=9)\n"
        "client.chat.completions.create(model='gpt-4o', max_tokens=9, messages=[{'role': 'user', 'content': 'hi'}])\n",
    )
    INVALID = (
        Invalid("SYSTEM_PROMPT = " + _big_prompt(300) + "\n"),
        Invalid(
            "import textwrap\nfrom anthropic import Anthropic\nclient = Anthropic(timeout=9)\n"
            "RULES = textwrap.dedent(" + _big_prompt(300) + ")\n"
            "client.messages.create(model='claude-3-5-haiku-latest', max_tokens=9, system=RULES, messages=[])\n"
        ),
    )

    def may_match(self, present: frozenset[str] | set[str], text: str, config: LintConfig) -> bool:
        if not could_exceed(text, config.max_prompt_tokens):
            return False
        return super().may_match(present, text, config) or PROMPT_ASSIGNMENT.search(text) is not None

    def check(self, ctx: FileContext) -> Iterator[Report]:
        limit = ctx.config.max_prompt_tokens
        seen: set[int] = set()
        for node, model, anchor in self._candidates(ctx):
            if id(node) in seen:
                continue
            seen.add(id(node))
            text = static_text(node, ctx.qualify)
            if text is None:
                continue
            count = over_budget(text.text, model, limit)
            if count is not None:
                yield Report(
                    node,
                    f"prompt literal is {describe(count)} tokens, over max-prompt-tokens={limit:,}: "
                    "every call pays for it; shorten it, or cache/retrieve the bulk",
                    anchor=anchor,
                )

    def _candidates(self, ctx: FileContext) -> Iterator[tuple[cst.BaseExpression, str, cst.CSTNode | None]]:
        default_model = ctx.config.prompt_model
        for name, value in ctx.index.module_constants:
            if PROMPT_NAME.search(name):
                yield value, default_model, None
        for call in ctx.llm_calls:
            model = ctx.model_of(call) or default_model
            parts, _ = prompt_parts(ctx, call)
            for part in parts:
                target = ctx.follow(part, call.scope)
                yield target, model, (call.node if target is part else None)
