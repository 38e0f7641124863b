"""Async summarisation with the Anthropic SDK and backoff."""

import asyncio

import anthropic
import backoff
import httpx
from anthropic import AsyncAnthropic

MODEL = "claude-3-5-haiku-latest"
SUMMARY_INSTRUCTIONS = "Summarise the text in three bullet points. Keep names and numbers exact."

llm = AsyncAnthropic(timeout=httpx.Timeout(60.0, connect=5.0), max_retries=3)


@backoff.on_exception(
    backoff.expo,
    (anthropic.RateLimitError, anthropic.APIConnectionError, anthropic.InternalServerError),
    max_tries=5,
    max_time=120,
    jitter=backoff.full_jitter,
)
async def summarise(text: str) -> str:
    message = await llm.messages.create(
        model=MODEL,
        max_tokens=400,
        system=SUMMARY_INSTRUCTIONS,
        messages=[{"role": "user", "content": text[:20_000]}],
    )
    return "".join(block.text for block in message.content if block.type == "text")


@backoff.on_predicate(backoff.constant, lambda status: status == "in_progress", interval=5, max_time=600)
async def batch_status(batch_id: str) -> str:
    batch = await llm.messages.batches.retrieve(batch_id)
    return batch.processing_status


async def summarise_many(texts: list[str], concurrency: int = 4) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str:
        async with gate:
            return await summarise(text)

    return await asyncio.gather(*(one(t) for t in texts))


class Assistant:
    def __init__(self, api_key: str | None = None) -> None:
        self.client = anthropic.Anthropic(api_key=api_key, timeout=45)
        self.fast = self.client.with_options(timeout=10, max_retries=1)

    def quick_answer(self, question: str) -> str:
        reply = self.fast.messages.create(
            model=MODEL,
            max_tokens=150,
            messages=[{"role": "user", "content": question}],
        )
        return reply.content[0].text

    def stream(self, question: str):
        with self.client.messages.stream(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": question}],
        ) as stream:
            yield from stream.text_stream
