"""LG105: retrying with no wait between attempts (a retry storm)."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint import sdk
from llmguard.lint.context import FileContext
from llmguard.lint.findings import Report
from llmguard.lint.retries import retry_loops, retry_uses
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import has_star_kwargs, keyword


class RetryWithoutWait(Rule):
    code = "LG105"
    name = "retry-without-wait"
    summary = "Retries with no wait between attempts: tenacity without `wait=`, or a retry loop with no sleep."
    literals = sdk.SDK_LITERALS + ("tenacity",)
    what = """
Flags tenacity's `@retry`/`retry(...)`/`Retrying(...)`/`AsyncRetrying(...)` without `wait=`, and
hand-written retry loops around an LLM call (a loop whose `except` branch goes round again) that
never sleep (`time.sleep`, `asyncio.sleep`, or any call whose name mentions sleep, wait or backoff).
"""
    why = """
Retrying immediately turns a rate limit into a retry storm: every client hammers the API at full
speed, the 429s continue, and requests that might have succeeded after a short pause fail instead.
Providers ask for exponential backoff with jitter and honour `Retry-After`.
"""
    example = """
for attempt in range(5):
    try:
        return client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=200)
    except openai.RateLimitError:
        continue
"""
    use_instead = """
for attempt in range(5):
    try:
        return client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=200)
    except openai.RateLimitError:
        time.sleep(min(30, 2 ** attempt) * random.random())
"""
    VALID = (
        """
from tenacity import retry, stop_after_attempt, wait_random_exponential
@retry(stop=stop_after_attempt(4), wait=wait_random_exponential(max=30))
def ask(): ...
""",
        """
import time, openai
client = openai.OpenAI(timeout=20)
def ask(msgs):
    for attempt in range(4):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
        except openai.RateLimitError:
            time.sleep(2 ** attempt)
    raise RuntimeError("rate limited")
""",
        """
import openai
client = openai.OpenAI(timeout=20)
def classify_all(docs):
    results = []
    for doc in docs:  # noqa: LG601 - one call per document is the point here
        try:
            results.append(client.chat.completions.create(model="gpt-4o-mini", max_tokens=5,
                                                          messages=[{"role": "user", "content": doc}]))
        except Exception:
            continue  # skip this document, go on with the next one: not a retry
    return results
""",
        """
import openai
client = openai.OpenAI(timeout=20)
def load_test():
    for i in range(100):
        try:
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=5,
                                           messages=[{"role": "user", "content": f"call {i}"}])
        except openai.RateLimitError:
            pass  # counting refusals: 100 different calls, not retries
""",
        """
import openai
client = openai.OpenAI(timeout=20)
def sample(n):
    outcomes = []
    for _ in range(n):  # noqa: LG601
        try:
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=5, messages=[])
            outcomes.append("ok")
        except openai.APIError:
            outcomes.append("error")  # the loop repeats the call whatever happens: not a retry
    return outcomes
""",
    )
    INVALID = (
        Invalid("from tenacity import retry, stop_after_attempt\n@retry(stop=stop_after_attempt(3))\ndef ask(): ...\n"),
        Invalid("""
import openai
client = openai.OpenAI(timeout=20)
def ask(msgs):
    for attempt in range(4):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=64)
        except openai.RateLimitError:
            continue
    raise RuntimeError("rate limited")
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for use in retry_uses(ctx):
            if use.library != "tenacity":
                continue
            call = use.call
            if call is not None and (has_star_kwargs(call) or keyword(call, "wait") is not None):
                continue
            yield Report(
                use.node,
                "tenacity retry without wait= retries immediately (a retry storm under rate "
                "limits); add wait=wait_random_exponential(...)",
            )
        seen: set[int] = set()
        for found in retry_loops(ctx):
            if id(found.loop) in seen:
                continue
            seen.add(id(found.loop))
            if not found.sleeps():
                yield Report(
                    found.loop,
                    "retry loop around an LLM call never sleeps between attempts (a retry "
                    "storm under rate limits); back off exponentially with jitter",
                )
