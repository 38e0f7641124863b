"""LG402: a prompt built from a whole file or document read, with no truncation."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext
from llmguard.lint.documents import whole_read
from llmguard.lint.findings import Report
from llmguard.lint.prompts import prompt_parts
from llmguard.lint.rules.base import Invalid, Rule


class UnboundedDocumentPrompt(Rule):
    code = "LG402"
    name = "unbounded-document-prompt"
    summary = "A prompt includes a whole file/document read (`f.read()`, `Path.read_text()`) with no truncation."
    also = ("read",)
    what = """
Flags an LLM call whose prompt (message content, system, prompt, input, instructions) is, or
includes through an f-string, `+`, `%` or `.format()`, the result of reading a whole file:
`open(p).read()`, `f.read()`, `Path(p).read_text()`, `.read_bytes()`, directly or through a
variable assigned in the same function. A slice (`text[:8000]`), a `read(n)` or any function the
text passes through (a truncation or chunking helper) counts as bounded. Reads of a literal path
are prompt templates, checked by LG403 instead.
"""
    why = """
Documents have no size limit: one large PDF export or log file turns a cheap call into a
context-length error, or into the most expensive call of the month. Truncate, chunk or summarise
the document to a token budget before it reaches the prompt.
"""
    example = """
text = Path(path).read_text()
client.chat.completions.create(model=MODEL, max_tokens=500,
                               messages=[{"role": "user", "content": f"Summarise:\\n{text}"}])
"""
    use_instead = """
text = Path(path).read_text()[:20_000]  # or a token-aware truncate/chunk helper
client.chat.completions.create(model=MODEL, max_tokens=500,
                               messages=[{"role": "user", "content": f"Summarise:\\n{text}"}])
"""
    VALID = (
        """
from pathlib import Path
from openai import OpenAI
client = OpenAI(timeout=30)
def summarise(path):
    text = Path(path).read_text()[:20000]
    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=300,
                                          messages=[{"role": "user", "content": f"Summarise:\\n{text}"}])
""",
        """
from openai import OpenAI
client = OpenAI(timeout=30)
def summarise(path, budget):
    with open(path) as f:
        text = truncate_tokens(f.read(), budget)
    return client.responses.create(model="gpt-4o-mini", max_output_tokens=300, input=text)
""",
    )
    INVALID = (
        Invalid("""
from pathlib import Path
from openai import OpenAI
client = OpenAI(timeout=30)
def summarise(path):
    text = Path(path).read_text()
    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=300,
                                          messages=[{"role": "user", "content": f"Summarise:\\n{text}"}])
"""),
        Invalid("""
import anthropic
client = anthropic.Anthropic(timeout=30)
def review(path):
    with open(path) as f:
        return client.messages.create(model="claude-3-5-haiku-latest", max_tokens=300,
                                      messages=[{"role": "user", "content": "Review:\\n" + f.read()}])
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for call in ctx.llm_calls:
            parts, _ = prompt_parts(ctx, call)
            order = ctx.index.order.get(id(call.node))
            for part in parts:
                read = whole_read(ctx, part, call.scope, order)
                if read is not None:
                    code = ctx.module.code_for_node(read).strip()
                    code = code if len(code) <= 40 else code[:37] + "..."
                    yield Report(
                        part,
                        f"prompt includes a whole document read ({code}) with no truncation: its "
                        "size, cost and context-length errors are unbounded; truncate or chunk it first",
                        anchor=call.node,
                        confidence=call.confidence,
                    )
