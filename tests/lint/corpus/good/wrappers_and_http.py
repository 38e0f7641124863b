"""litellm, LangChain and raw HTTP calls to LLM APIs, all bounded."""

import os

import aiohttp
import httpx
import litellm
import requests
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"

chat = ChatOpenAI(model="gpt-4o-mini", max_tokens=512, timeout=30, max_retries=2)
claude = ChatAnthropic(model="claude-3-5-haiku-latest", max_tokens=512, timeout=30)


def litellm_answer(question: str) -> str:
    response = litellm.completion(
        model="anthropic/claude-3-5-haiku-latest",
        messages=[{"role": "user", "content": question}],
        max_tokens=300,
        timeout=30,
    )
    return response.choices[0].message.content


def raw_openai(question: str) -> dict:
    headers = {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"}
    body = {"model": "gpt-4o-mini", "max_tokens": 200, "messages": [{"role": "user", "content": question}]}
    response = requests.post(OPENAI_URL, json=body, headers=headers, timeout=(5, 60))
    response.raise_for_status()
    return response.json()


def raw_anthropic(question: str) -> dict:
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0)) as http:
        response = http.post(
            ANTHROPIC_URL,
            json={"model": "claude-3-5-haiku-latest", "max_tokens": 200,
                  "messages": [{"role": "user", "content": question}]},
            headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"},
        )
    return response.json()


async def raw_async(question: str) -> dict:
    timeout = aiohttp.ClientTimeout(total=90, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(OPENAI_URL, json={"model": "gpt-4o-mini", "max_tokens": 100,
                                                  "messages": [{"role": "user", "content": question}]}) as resp:
            return await resp.json()


def fetch_page(url: str) -> str:
    return requests.get(url, timeout=10).text
