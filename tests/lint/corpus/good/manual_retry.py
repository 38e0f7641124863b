"""Hand-written retries that are bounded, back off with jitter, and retry only transient errors."""

import random
import time

import openai

client = openai.OpenAI(timeout=20)
TRANSIENT = (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)


def ask(messages: list[dict], attempts: int = 4) -> str:
    for attempt in range(attempts):
        try:
            response = client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=300)
            return response.choices[0].message.content or ""
        except TRANSIENT:
            if attempt == attempts - 1:
                raise
            time.sleep(min(20.0, 2**attempt) * random.uniform(0.5, 1.0))
    raise RuntimeError("unreachable")


def ask_before(messages: list[dict], deadline_s: float = 60.0) -> str:
    deadline = time.monotonic() + deadline_s
    delay = 1.0
    while True:
        try:
            response = client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=300)
            return response.choices[0].message.content or ""
        except openai.RateLimitError as exc:
            retry_after = float(exc.response.headers.get("retry-after", delay))
            if time.monotonic() + retry_after > deadline:
                raise
            time.sleep(retry_after)
            delay = min(delay * 2, 30.0)


def ask_counted(messages: list[dict]) -> str:
    attempt = 0
    while True:
        attempt += 1
        try:
            return client.responses.create(model="gpt-4o-mini", input=messages, max_output_tokens=300).output_text
        except (openai.APITimeoutError, openai.APIConnectionError):
            if attempt >= 3:
                raise
            time.sleep(attempt + random.random())


def poll_queue(queue) -> None:
    """Not an LLM loop: a worker that waits for jobs forever is fine."""
    while True:
        try:
            job = queue.get(timeout=5)
        except Exception:
            continue
        job.run()
