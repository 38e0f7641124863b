"""Retrieval-augmented answers: documents are chunked and truncated before they reach a prompt."""

from __future__ import annotations

import textwrap
from pathlib import Path

import tiktoken
from openai import OpenAI

client = OpenAI(timeout=60, max_retries=3)
ENCODING = tiktoken.get_encoding("cl100k_base")
MAX_CONTEXT_TOKENS = 6000

ANSWER_TEMPLATE = textwrap.dedent(
    """\
    Answer the question using only the context.
    If the context does not contain the answer, say "I don't know".

    Context:
    {context}

    Question: {question}
    """
)


def truncate_tokens(text: str, budget: int) -> str:
    tokens = ENCODING.encode(text)
    return ENCODING.decode(tokens[:budget])


def chunks(text: str, size: int = 800) -> list[str]:
    tokens = ENCODING.encode(text)
    return [ENCODING.decode(tokens[i : i + size]) for i in range(0, len(tokens), size)]


def load_document(path: str) -> str:
    return truncate_tokens(Path(path).read_text(encoding="utf-8"), MAX_CONTEXT_TOKENS)


def answer(question: str, paths: list[str]) -> str:
    context = "\n\n".join(load_document(p) for p in paths)
    prompt = ANSWER_TEMPLATE.format(context=context, question=question)
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=400,
    )
    return response.choices[0].message.content or ""


def summarise_file(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        head = handle.read(16_000)
    response = client.responses.create(
        model="gpt-4o-mini", input=f"Summarise:\n{head}", max_output_tokens=300
    )
    return response.output_text


def summarise_sliced(path: str) -> str:
    text = Path(path).read_text()[:12_000]
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        max_tokens=300,
        messages=[{"role": "user", "content": f"Summarise:\n{text}"}],
    )
    return response.choices[0].message.content or ""
