"""Ticket triage with the OpenAI SDK: bounded tenacity retries, timeouts, output limits."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import httpx
import openai
from openai import OpenAI
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = (
    "You triage customer support tickets. Reply with JSON: "
    '{"category": one of billing|bug|feature|other, "urgency": 1-5, "summary": short text}.'
)
RETRYABLE = (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError)

client = OpenAI(timeout=httpx.Timeout(30.0, connect=5.0), max_retries=2)


@dataclass
class Triage:
    category: str
    urgency: int
    summary: str


@retry(
    retry=retry_if_exception_type(RETRYABLE),
    wait=wait_random_exponential(min=1, max=30),
    stop=stop_after_attempt(5),
    reraise=True,
)
def classify(ticket: str) -> Triage:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": ticket[:8000]},
        ],
        max_tokens=200,
        temperature=0,
        response_format={"type": "json_object"},
    )
    data = json.loads(response.choices[0].message.content or "{}")
    return Triage(data.get("category", "other"), int(data.get("urgency", 3)), data.get("summary", ""))


def stream_answer(question: str) -> str:
    parts = []
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": question}],
        max_completion_tokens=500,
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


def embed(texts: list[str]) -> list[list[float]]:
    result = client.embeddings.create(model="text-embedding-3-small", input=texts)
    return [item.embedding for item in result.data]


def triage_all(tickets: list[str]) -> list[Triage]:
    results = []
    for ticket in tickets:
        try:
            results.append(classify(ticket))
        except openai.BadRequestError as exc:
            log.warning("skipping ticket: %s", exc)
    return results
