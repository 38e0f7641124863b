"""The clients a notebook reaches for, each making one call against the simulator its own way.

`CASES` drives `test_clients_guarded.py`, and the README's "what is guarded" table is generated
from it (`python -m tests.clients` prints the table; a test keeps the README equal to it), so the
table says only what the tests prove.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must never fetch its price list

OPENAI_KEY = "sk-llmguard-clients-5e1f0a"
ANTHROPIC_KEY = "sk-ant-llmguard-clients-9c3d7b"
GOOGLE_KEY = "AIza-llmguard-clients-2b8f4e"
MISTRAL_KEY = "mistral-llmguard-clients-6a0c1d"
MAX_TOKENS = 20

FEATURES = ("metered", "one row per call", "limited", "budgeted", "cached", "streamed")


@dataclass(frozen=True)
class Case:
    client: str  # as the README names it
    api: str
    model: str
    call: Callable[..., None]  # call(sim, prompt, temperature, stream)
    refusal: str  # the exception a refusal raises in this client
    unsupported: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return f"{self.client} {self.api}".replace(" ", "-")


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _sampling(temperature: float | None) -> dict[str, Any]:
    return {} if temperature is None else {"temperature": temperature}


# ---- the official SDKs ------------------------------------------------------------------------


def openai_chat(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    import openai

    client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key=OPENAI_KEY, timeout=30)
    kwargs = {"model": "gpt-4o-mini", "messages": _messages(prompt), "max_tokens": MAX_TOKENS, **_sampling(temperature)}
    if stream:
        for _ in client.chat.completions.create(stream=True, **kwargs):
            pass
    else:
        client.chat.completions.create(**kwargs)


def anthropic_messages(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=sim.base_url, api_key=ANTHROPIC_KEY, timeout=30)
    kwargs: dict[str, Any] = {
        "model": "claude-3-5-haiku-latest",
        "messages": _messages(prompt),
        "max_tokens": MAX_TOKENS,
    }
    if temperature is not None:  # this SDK release has no temperature argument; the API still takes it
        kwargs["extra_body"] = {"temperature": temperature}
    if stream:
        with client.messages.stream(**kwargs) as events:
            for _ in events:
                pass
    else:
        client.messages.create(**kwargs)


def google_genai(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    from google import genai

    client = genai.Client(api_key=GOOGLE_KEY, http_options={"base_url": sim.base_url, "timeout": 30_000})
    config = {"max_output_tokens": MAX_TOKENS, **_sampling(temperature)}
    if stream:
        for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt, config=config):
            pass
    else:
        client.models.generate_content(model="gemini-2.5-flash", contents=prompt, config=config)


# ---- libraries built on them, or on their own HTTP clients -------------------------------------


def langchain_openai(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=sim.base_url + "/v1",
        api_key=OPENAI_KEY,
        max_tokens=MAX_TOKENS,
        timeout=30,
        **_sampling(temperature),
    )
    if stream:
        for _ in model.stream(prompt):
            pass
    else:
        model.invoke(prompt)


def langchain_anthropic(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    from langchain_anthropic import ChatAnthropic

    model = ChatAnthropic(
        model="claude-3-5-haiku-latest",
        base_url=sim.base_url,
        api_key=ANTHROPIC_KEY,
        max_tokens=MAX_TOKENS,
        timeout=30,
        **_sampling(temperature),
    )
    if stream:
        for _ in model.stream(prompt):
            pass
    else:
        model.invoke(prompt)


def _litellm(model: str, api_base: str, key: str) -> Callable[..., None]:
    def call(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
        import litellm

        answer = litellm.completion(
            model=model,
            api_base=sim.base_url + api_base,
            api_key=key,
            messages=_messages(prompt),
            max_tokens=MAX_TOKENS,
            timeout=30,
            stream=stream,
            **_sampling(temperature),
        )
        if stream:
            for _ in answer:
                pass

    return call


def mistral_chat(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    from mistralai.client import Mistral

    client = Mistral(api_key=MISTRAL_KEY, server_url=sim.base_url, timeout_ms=30_000)
    kwargs = {
        "model": "mistral-small-latest",
        "messages": _messages(prompt),
        "max_tokens": MAX_TOKENS,
        **_sampling(temperature),
    }
    if stream:
        for _ in client.chat.stream(**kwargs):
            pass
    else:
        client.chat.complete(**kwargs)


def httpx_openai(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    import httpx

    body = {"model": "gpt-4o-mini", "messages": _messages(prompt), "max_tokens": MAX_TOKENS, **_sampling(temperature)}
    headers = {"authorization": f"Bearer {OPENAI_KEY}"}
    url = sim.base_url + "/v1/chat/completions"
    if stream:
        with httpx.stream("POST", url, json=body | {"stream": True}, headers=headers, timeout=30) as response:
            response.raise_for_status()
            for _ in response.iter_lines():
                pass
    else:
        httpx.post(url, json=body, headers=headers, timeout=30).raise_for_status()


def httpx_anthropic(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
    import httpx

    body = {
        "model": "claude-3-5-haiku-latest",
        "messages": _messages(prompt),
        "max_tokens": MAX_TOKENS,
        **_sampling(temperature),
    }
    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    url = sim.base_url + "/v1/messages"
    if stream:
        with httpx.stream("POST", url, json=body | {"stream": True}, headers=headers, timeout=30) as response:
            response.raise_for_status()
            for _ in response.iter_lines():
                pass
    else:
        httpx.post(url, json=body, headers=headers, timeout=30).raise_for_status()


def _agents(mode: str) -> Callable[..., None]:
    def call(sim: Any, prompt: str, temperature: float | None, stream: bool) -> None:
        import openai
        from agents import (
            Agent,
            ModelSettings,
            OpenAIChatCompletionsModel,
            OpenAIResponsesModel,
            Runner,
            set_tracing_disabled,
        )

        set_tracing_disabled(True)  # its tracer would post to api.openai.com
        client = openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key=OPENAI_KEY, timeout=30)
        kind = OpenAIResponsesModel if mode == "responses" else OpenAIChatCompletionsModel
        agent = Agent(
            name="brief",
            instructions="Answer briefly.",
            model=kind(model="gpt-4o-mini", openai_client=client),
            # a Responses answer cut at max_output_tokens is an error to the Agents SDK: room to finish
            model_settings=ModelSettings(max_tokens=1000, temperature=temperature),
        )
        Runner.run_sync(agent, prompt)

    return call


CASES = (
    Case("openai", "chat completions", "gpt-4o-mini", openai_chat, "openai.RateLimitError"),
    Case("anthropic", "messages", "claude-3-5-haiku-latest", anthropic_messages, "anthropic.RateLimitError"),
    Case("google-genai", "generateContent", "gemini-2.5-flash", google_genai, "google.genai.errors.ClientError"),
    Case("langchain-openai", "chat completions", "gpt-4o-mini", langchain_openai, "openai.RateLimitError"),
    Case("langchain-anthropic", "messages", "claude-3-5-haiku-latest", langchain_anthropic, "anthropic.RateLimitError"),
    Case(
        "litellm openai/",
        "chat completions",
        "gpt-4o-mini",
        _litellm("openai/gpt-4o-mini", "/v1", OPENAI_KEY),
        "litellm.RateLimitError",
    ),
    Case(
        "litellm anthropic/",
        "messages",
        "claude-3-5-haiku-latest",
        _litellm("anthropic/claude-3-5-haiku-latest", "", ANTHROPIC_KEY),
        "litellm.RateLimitError",
    ),
    Case(
        "litellm gemini/",
        "generateContent",
        "gemini-2.5-flash",
        _litellm("gemini/gemini-2.5-flash", "/v1beta", GOOGLE_KEY),
        "litellm.RateLimitError",
    ),
    Case("mistralai", "chat completions", "mistral-small-latest", mistral_chat, "mistralai.client.errors.SDKError"),
    Case("httpx", "chat completions", "gpt-4o-mini", httpx_openai, "httpx.HTTPStatusError"),
    Case("httpx", "messages", "claude-3-5-haiku-latest", httpx_anthropic, "httpx.HTTPStatusError"),
    Case(
        "openai-agents",
        "responses",
        "gpt-4o-mini",
        _agents("responses"),
        "openai.RateLimitError",
        frozenset({"streamed"}),
    ),
    Case(
        "openai-agents",
        "chat completions",
        "gpt-4o-mini",
        _agents("chat"),
        "openai.RateLimitError",
        frozenset({"streamed"}),
    ),
)


def table() -> str:
    """The README's table: a mark where a test proves it, a dash where the case is not tested."""
    head = ["client", "API", *FEATURES, "a refusal raises"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in CASES:
        marks = ["—" if f in case.unsupported else "✓" for f in FEATURES]
        lines.append("| " + " | ".join([f"`{case.client}`", case.api, *marks, f"`{case.refusal}`"]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
