"""The embedded simulated LLM provider: a real HTTP server on 127.0.0.1 speaking the OpenAI,
Anthropic and Gemini wire formats, with rate limits, latency, prefix caching and fault injection, so the demo,
notebooks and tests run offline and users can rehearse limits and failures.

    with SimProvider(rpm=60, tpm=10_000) as sim:
        client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-test")
"""

from llmguard.sim.faults import KINDS as FAULT_KINDS
from llmguard.sim.provider import SimProvider

__all__ = ["SimProvider", "FAULT_KINDS"]
