"""LG601: an LLM or embedding call made once per item of a loop, with no batching, cache or rate bound."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.findings import Report
from llmguard.lint.index import Scope
from llmguard.lint.loops import Loop, loop_sites
from llmguard.lint.names import dotted
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import keyword, number

SMALL = 10  # a loop over at most this many literal items is a comparison, not a fan-out
_BATCH_WORDS = ("batch", "chunked", "grouper")


class LLMCallInLoop(Rule):
    code = "LG601"
    name = "llm-call-in-loop"
    summary = "An LLM or embedding call runs once per loop item with no batching, cache or rate bound in sight."
    what = """
Flags an SDK call (OpenAI, Anthropic, LiteLLM) written directly in the body of a `for` loop or a
comprehension over a collection, or of a `while` loop that takes items from a queue, when nothing
in sight bounds it: no `with`/`async with` limiter or semaphore around it, no `sleep`/`acquire`
in the loop, no cache lookup, no `break`/`return` (a loop that runs until done, such as an agent
or a retry loop). Embedding calls are told to batch their input. Not flagged: calls in a function
the loop merely calls, loops over at most ten literal items (`for model in ["a", "b"]`,
`docs[:5]`), over models (`for m in MODELS: ...(model=m)`) or over batches (`for batch in
batched(docs, 20)`), files that use llmguard (its guard bounds rate and
budget), and `call-targets` wrappers (they may bound themselves).
"""
    why = """
Cost, request rate and run time grow with the data: a list that was 20 items in the notebook is
20,000 in the batch job. Unthrottled, the loop runs into the provider's RPM/TPM limits, and each
429 and retry makes it slower and costlier still. Embedding one text per request wastes most of
each request's overhead and rate allowance: the endpoint takes up to 2,048 inputs at once.
"""
    example = """
for doc in docs:
    vectors.append(client.embeddings.create(model="text-embedding-3-small", input=doc).data[0].embedding)
"""
    use_instead = """
for start in range(0, len(docs), 256):  # one request per 256 documents
    batch = client.embeddings.create(model="text-embedding-3-small", input=docs[start:start + 256])
    vectors.extend(item.embedding for item in batch.data)
# chat calls: bound the rate (llmguard, an asyncio.Semaphore, a limiter), cache results,
# or send offline work through the Batch API
"""
    VALID = (
        """
from openai import OpenAI
client = OpenAI(timeout=30)
def embed(docs):
    out = []
    for start in range(0, len(docs), 100):
        out.extend(client.embeddings.create(model="text-embedding-3-small", input=docs[start:start + 100]).data)
    return out
""",
        """
import asyncio
from openai import AsyncOpenAI
client = AsyncOpenAI(timeout=30)
sem = asyncio.Semaphore(4)
async def answer_all(questions):
    async def one(q):
        async with sem:
            return await client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                        messages=[{"role": "user", "content": q}])
    return await asyncio.gather(*(one(q) for q in questions))
""",
        """
from openai import OpenAI
client = OpenAI(timeout=30)
for model in ["gpt-4o-mini", "gpt-4.1-mini"]:
    print(client.chat.completions.create(model=model, max_tokens=20, messages=[]))
""",
        """
from openai import OpenAI
client = OpenAI(timeout=30)
def agent(messages, max_steps=20):
    for _ in range(max_steps):
        reply = client.chat.completions.create(model="gpt-4o-mini", max_tokens=300, messages=messages)
        if not reply.choices[0].message.tool_calls:
            return reply
        messages.append(reply.choices[0].message)
""",
        """
import time
from anthropic import Anthropic
client = Anthropic(timeout=30)
def label(rows):
    for row in rows:
        time.sleep(1.2)  # 50 requests per minute
        yield client.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=[row])
""",
    )
    INVALID = (
        Invalid("""
from openai import OpenAI
client = OpenAI(timeout=30)
def embed(docs):
    return [client.embeddings.create(model="text-embedding-3-small", input=doc).data[0].embedding for doc in docs]
"""),
        Invalid("""
import anthropic
client = anthropic.Anthropic(timeout=30)
def summarise(tickets):
    out = {}
    for ticket in tickets:
        out[ticket.id] = client.messages.create(model="claude-3-5-haiku-latest", max_tokens=200,
                                                messages=[{"role": "user", "content": ticket.body}])
    return out
"""),
        Invalid("""
import collections
import litellm
def crawl(start):
    queue = collections.deque([start])
    while queue:
        page = queue.popleft()
        reply = litellm.completion(model="gpt-4o-mini", messages=[page], max_tokens=100, timeout=30)
        queue.extend(reply.links)
"""),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        llm = {id(c.node): c for c in ctx.llm_calls if not c.is_constructor and c.endpoint != "custom"}
        if not llm or _uses_llmguard(ctx):
            return
        for site in loop_sites(ctx, llm):
            loop, call = site.loop, site.call
            if site.limited or loop.throttled or loop.cached or loop.exits:
                continue  # exits: runs until done (an agent, a search, a retry loop: LG101's subject)
            if isinstance(loop.node, cst.While) and not loop.drains:
                continue  # `while True:` / `while not done:`: a conversation or agent loop, not a fan-out
            if loop.iterable is not None and _small(ctx, loop.iterable, loop.scope):
                continue
            if _sweeps_models(call, loop):
                continue  # `for model in MODELS: ...(model=model)`: a comparison across a few models
            if _over_batches(ctx, loop):
                continue  # `gather(*[... for x in batch])` inside `for batch in batches`: bounded per batch
            label = _code(ctx, loop.iterable) if loop.iterable is not None else f"`{loop.queue}`"
            if call.endpoint == "embeddings":
                if _batched(ctx, call, loop):
                    continue
                message = (
                    f"embeddings.create runs once per item of {label}: send the items in one request "
                    "(input=[...], up to 2,048 inputs) to cut requests, rate-limit pressure and run time"
                )
            else:
                message = (
                    f"LLM call runs once per item of {label} with no limiter, cache or budget in sight: "
                    "request rate and cost grow with the data; bound it (llmguard, a semaphore or rate "
                    "limiter), cache the results, or send offline work through the Batch API"
                )
            yield Report(call.node, message, anchor=loop.node, confidence=call.confidence)


def _uses_llmguard(ctx: FileContext) -> bool:
    return any(target == "llmguard" or target.startswith("llmguard.") for target in ctx.imports.aliases.values())


def _small(ctx: FileContext, expr: cst.BaseExpression, scope: Scope) -> bool:
    """A literal collection (or `range`) of at most SMALL items, directly or through one name."""
    expr = ctx.follow(expr, scope)
    if isinstance(expr, cst.List | cst.Tuple | cst.Set):
        return len(expr.elements) <= SMALL and not any(isinstance(e, cst.StarredElement) for e in expr.elements)
    if isinstance(expr, cst.Dict):
        return len(expr.elements) <= SMALL and not any(isinstance(e, cst.StarredDictElement) for e in expr.elements)
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Slice):
        piece = expr.slice[0].slice  # docs[:5]: trying the first few
        lower = number(piece.lower, ctx.qualify) if piece.lower is not None else 0
        upper = number(piece.upper, ctx.qualify) if piece.upper is not None else None
        return lower is not None and upper is not None and 0 <= lower <= upper and upper - lower <= SMALL
    if isinstance(expr, cst.Call):
        name = dotted(expr.func)
        positional = [a.value for a in expr.args if a.keyword is None and not a.star]
        if name == "range" and 1 <= len(positional) <= 3:
            values: list[int] = []
            for value in positional:
                bound = number(ctx.follow(value, scope), ctx.qualify)
                if bound is None or bound != int(bound):
                    return False
                values.append(int(bound))
            if len(values) == 1:
                values.insert(0, 0)
            step = values[2] if len(values) == 3 else 1
            return step != 0 and len(range(values[0], values[1], step)) <= SMALL
        if name in ("enumerate", "reversed", "sorted", "list", "tuple", "zip") and positional:
            return _small(ctx, positional[0], scope)
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("items", "keys", "values"):
            return _small(ctx, expr.func.value, scope)
    return False


def _over_batches(ctx: FileContext, loop: Loop | None) -> bool:
    """This loop or one around it goes over batches (`for batch in batched(docs, 20)`)."""
    while loop is not None:
        node = loop.node
        target = node.target if isinstance(node, cst.For) else getattr(getattr(node, "for_in", None), "target", None)
        texts = [_code(ctx, n).lower() for n in (loop.iterable, target) if n is not None]
        if any(word in text for text in texts for word in _BATCH_WORDS):
            return True
        loop = loop.parent
    return False


def _sweeps_models(call: LLMCall, loop: Loop) -> bool:
    node = loop.node
    target = node.target if isinstance(node, cst.For) else getattr(getattr(node, "for_in", None), "target", None)
    arg = keyword(call.node, *call.model_args)
    return (
        isinstance(target, cst.Name)
        and arg is not None
        and isinstance(arg.value, cst.Name)
        and arg.value.value == target.value
    )


def _batched(ctx: FileContext, call: LLMCall, loop: Loop) -> bool:
    """The loop already sends batches: a sliced/collected input, or it iterates over batches."""
    arg = keyword(call.node, "input")
    if arg is None:
        return True  # the input is not visible: do not guess
    value = arg.value
    if isinstance(value, cst.Subscript) and any(isinstance(e.slice, cst.Slice) for e in value.slice):
        return True
    if isinstance(value, cst.ListComp | cst.GeneratorExp):
        return True
    if isinstance(value, cst.Call) and dotted(value.func) in ("list", "tuple"):
        return True
    if any(word in _code(ctx, value).lower() for word in _BATCH_WORDS):
        return True
    iterable = loop.iterable
    if isinstance(iterable, cst.Call):
        name = (dotted(iterable.func) or "").lower()
        if any(word in name for word in _BATCH_WORDS):
            return True
        if name == "range" and len(iterable.args) == 3:  # range(0, len(docs), 100)
            return True
    return iterable is not None and any(word in _code(ctx, iterable).lower() for word in _BATCH_WORDS)


def _code(ctx: FileContext, expr: cst.CSTNode) -> str:
    text = " ".join(ctx.module.code_for_node(expr).split())
    return f"`{text if len(text) <= 30 else text[:27] + '...'}`"
