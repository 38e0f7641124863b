"""Azure, Bedrock and Vertex clients, per-call timeouts, with_options and the Responses API."""

import os

import httpx
from anthropic import AnthropicBedrock, AnthropicVertex
from openai import AsyncOpenAI, AzureOpenAI, OpenAI

azure = AzureOpenAI(
    api_version="2024-10-21",
    azure_endpoint=os.environ.get("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com"),
    timeout=40.0,
)
bedrock = AnthropicBedrock(aws_region="us-east-1", timeout=60)
vertex = AnthropicVertex(region="us-east5", project_id="demo", timeout=httpx.Timeout(45.0, connect=5.0))
async_client = AsyncOpenAI(http_client=httpx.AsyncClient(timeout=httpx.Timeout(30.0)))
per_call = OpenAI()  # every call below passes its own timeout

RESPONSE_INSTRUCTIONS = "Answer in one short paragraph."


def azure_chat(question: str) -> str:
    result = azure.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": question}],
        max_tokens=256,
    )
    return result.choices[0].message.content or ""


def bedrock_chat(question: str) -> str:
    result = bedrock.messages.create(
        model="anthropic.claude-3-5-haiku-20241022-v1:0",
        max_tokens=256,
        messages=[{"role": "user", "content": question}],
    )
    return result.content[0].text


def vertex_chat(question: str) -> str:
    return vertex.messages.create(
        model="claude-3-5-haiku@20241022", max_tokens=256, messages=[{"role": "user", "content": question}]
    ).content[0].text


async def responses(question: str) -> str:
    result = await async_client.responses.create(
        model="gpt-4o-mini",
        instructions=RESPONSE_INSTRUCTIONS,
        input=question,
        max_output_tokens=300,
    )
    return result.output_text


def per_call_timeouts(question: str) -> str:
    first = per_call.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}], max_tokens=100, timeout=15
    )
    second = per_call.with_options(timeout=20).responses.create(
        model="gpt-4o-mini", input=question, max_output_tokens=100
    )
    return (first.choices[0].message.content or "") + second.output_text


def configure(**client_options) -> OpenAI:
    return OpenAI(**client_options)
