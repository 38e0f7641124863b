"""LG305: `temperature=` sent to an OpenAI reasoning model (o1, o3, o4-mini, gpt-5), which answers 400."""

from __future__ import annotations

import re
from collections.abc import Iterator

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import is_none, keyword, number

# The reasoning models that reject a non-default temperature. Not gpt-5-chat-latest (a chat model)
# nor gpt-5.1 and later, which accept it while reasoning is off (their default).
_DATE = r"(?:-\d{4}-\d{2}-\d{2})?"
REASONING_MODEL = re.compile(
    rf"^(?:o1(?:-mini|-preview|-pro)?|o3(?:-mini|-pro|-deep-research)?|o4-mini(?:-deep-research)?){_DATE}$"
    rf"|^gpt-5(?:-mini|-nano|-pro|-codex)?{_DATE}$"
)
_LITELLM_OPENAI_PREFIXES = ("openai/", "azure/")


def reasoning_model(model: str) -> bool:
    model = model.strip().lower()
    for prefix in _LITELLM_OPENAI_PREFIXES:
        if model.startswith(prefix):
            model = model[len(prefix) :]
    return REASONING_MODEL.match(model) is not None


class TemperatureOnReasoningModel(Rule):
    code = "LG305"
    name = "temperature-reasoning-model"
    summary = "`temperature=` is passed to a reasoning model (o1, o3, o4-mini, gpt-5) that rejects it with a 400."
    also = ("temperature",)
    what = """
Flags `temperature=` (other than the default `1`) on an OpenAI chat completions, responses or
completions call, or a `litellm.completion()`, whose literal `model=` is a reasoning model: the
`o1`, `o3` and `o4-mini` families and `gpt-5`, `gpt-5-mini`, `gpt-5-nano`, `gpt-5-pro`,
`gpt-5-codex` (dated versions included). `gpt-5-chat-latest` and `gpt-5.1`+ are not flagged.
"""
    why = """
These models accept only the default temperature: the API answers `400 Unsupported value:
'temperature' does not support 0.2 with this model` (some reject the parameter outright). Every
call fails, retries cannot help, and it usually shows up only after switching a working
`gpt-4o` call to a reasoning model.
"""
    example = """
client.chat.completions.create(model="o3-mini", messages=msgs, max_completion_tokens=2000, temperature=0)
"""
    use_instead = """
client.chat.completions.create(model="o3-mini", messages=msgs, max_completion_tokens=2000,
                               reasoning_effort="low")
"""
    VALID = (
        """
from openai import OpenAI
client = OpenAI(timeout=30)
client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=50, temperature=0)
client.chat.completions.create(model="o3-mini", messages=[], max_completion_tokens=500, temperature=1)
client.chat.completions.create(model="gpt-5-chat-latest", messages=[], max_completion_tokens=50, temperature=0.2)
""",
        """
from openai import OpenAI
client = OpenAI(timeout=30)
def ask(model, msgs):
    return client.chat.completions.create(model=model, messages=msgs, max_completion_tokens=50, temperature=0)
""",
    )
    INVALID = (
        Invalid("""
from openai import OpenAI
client = OpenAI(timeout=30)
client.chat.completions.create(model="o3-mini", messages=[], max_completion_tokens=500, temperature=0)
"""),
        Invalid("""
from openai import AsyncOpenAI
MODEL = "gpt-5-mini"
client = AsyncOpenAI(timeout=30)
async def ask(text, temp=0.3):
    return await client.responses.create(model=MODEL, input=text, max_output_tokens=400, temperature=temp)
"""),
        Invalid(
            "import litellm\nlitellm.completion(model='openai/o4-mini-2025-04-16', messages=[], "
            "max_tokens=9, timeout=9, temperature=0.7)\n"
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        for call in ctx.llm_calls:
            if not _sends_openai_params(call):
                continue
            arg = keyword(call.node, "temperature")
            if arg is None:
                continue
            value = ctx.follow(arg.value, call.scope)
            if is_none(value) or number(value, ctx.qualify) == 1:
                continue
            model = ctx.model_of(call)
            if model is None or not reasoning_model(model):
                continue
            confidence = "low" if call.confidence == "low" or _custom_base_url(call) else "high"
            yield Report(
                arg,
                f"temperature is not supported by the reasoning model {model!r}: the API rejects the "
                "call with 400 (only the default 1 is accepted); remove it (steer with reasoning_effort)",
                anchor=call.node,
                confidence=confidence,
            )


def _sends_openai_params(call: LLMCall) -> bool:
    if call.endpoint in ("chat.completions", "responses", "completions"):
        return call.family == "openai"
    return call.endpoint == "wrapper" and call.family == "litellm"


def _custom_base_url(call: LLMCall) -> bool:
    return any(keyword(c.root.node, "base_url") is not None for c in call.clients)
