"""LG101: a hand-written retry loop around an LLM call with no attempt bound."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.retries import retry_loops
from llmguard.lint.rules.base import Invalid, Rule


class UnboundedRetryLoop(Rule):
    code = "LG101"
    name = "unbounded-retry-loop"
    summary = "A `while True` retry loop around an LLM call has no attempt bound."
    what = """
Flags a `while True:` (or `for _ in itertools.count():`) loop whose body calls an LLM inside a
`try` whose `except` branch goes round again, when nothing bounds the attempts: no handler
re-raises, breaks or returns, and no `if` compares a counter or deadline and leaves the loop.
"""
    why = """
During an outage, a rate-limit storm or with a revoked key, the loop retries forever: the job
never finishes, every attempt may be billed, and the retries add to the very overload that made
the call fail.
"""
    example = """
while True:
    try:
        return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=200)
    except openai.RateLimitError:
        time.sleep(2)
"""
    use_instead = """
for attempt in range(5):
    try:
        return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=200)
    except openai.RateLimitError:
        time.sleep(2 ** attempt)
raise RuntimeError("gave up after 5 attempts")
"""
    VALID = (
        """
import time, openai
client = openai.OpenAI(timeout=30)
def ask(msgs):
    attempt = 0
    while True:
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=100)
        except openai.RateLimitError:
            attempt += 1
            if attempt >= 5:
                raise
            time.sleep(2 ** attempt)
""",
        """
import time, openai
client = openai.OpenAI(timeout=30)
def ask(msgs, deadline):
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("LLM call did not succeed before the deadline")
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=100)
        except openai.APIConnectionError:
            time.sleep(1)
""",
        """
while True:
    try:
        line = input()
    except EOFError:
        continue
""",
    )
    INVALID = (
        Invalid("""
import time, openai
client = openai.OpenAI(timeout=30)
def ask(msgs):
    while True:
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=100)
        except openai.RateLimitError:
            time.sleep(2)
"""),
        Invalid("""
import itertools, asyncio
from anthropic import AsyncAnthropic
llm = AsyncAnthropic(timeout=20)
async def ask(text):
    for attempt in itertools.count():
        try:
            return await llm.messages.create(model="claude-3-5-haiku-latest", max_tokens=300,
                                             messages=[{"role": "user", "content": text}])
        except Exception:
            await asyncio.sleep(attempt)
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        seen: set[int] = set()
        for found in retry_loops(ctx):
            if id(found.loop) in seen or not found.infinite or found.bounded():
                continue
            seen.add(id(found.loop))
            yield Report(
                found.loop,
                "retry loop around an LLM call has no attempt bound: it retries forever "
                "on a persistent error; count attempts and re-raise, or use tenacity with stop=",
            )
