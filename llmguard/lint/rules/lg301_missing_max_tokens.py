"""LG301: an LLM generation call without a max-tokens bound."""

from __future__ import annotations

from collections.abc import Iterator

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.edits import AddKeyword
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule


class MissingMaxTokens(Rule):
    code = "LG301"
    skips_tests = True
    name = "missing-max-tokens"
    summary = "A chat/completions/responses call has no max tokens bound."
    fixable = True
    what = """
Flags LLM generation calls without their output bound: OpenAI `chat.completions.create/parse/stream`
(`max_tokens` or `max_completion_tokens`), `responses.create/parse/stream` (`max_output_tokens`),
`completions.create` (`max_tokens`), Anthropic `messages.create/stream` (`max_tokens`), legacy
`openai.ChatCompletion.create`, `litellm.completion`/`acompletion`, LangChain `ChatOpenAI`/
`ChatAnthropic`, `functools.partial(<one of these>, ...)` (unless every call of the partial passes
the bound), and the wrappers named in `call-targets`. `**params` built from a dict in view
counts by its keys; one whose contents cannot be seen gives a low-confidence finding, and the
`**kwargs` of the enclosing function (a wrapper that forwards its caller's arguments) none.
`--fix` adds the endpoint's own argument (`max_completion_tokens` for chat completions), except on
low-confidence findings. Test files (`tests/`, `test/`, `test_*.py`, `*_test.py`, `conftest.py`)
are skipped unless `include-tests = true`.
"""
    why = """
Without a bound the model may generate until the context window is full: a runaway or looping
answer costs the price of the whole output window, takes minutes, and a budget check before the
call cannot know the worst case.
"""
    example = """
client.chat.completions.create(model="gpt-4o-mini", messages=messages)
"""
    use_instead = """
client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_completion_tokens=1024)
"""
    VALID = (
        """
from openai import OpenAI
client = OpenAI(timeout=30)
client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=256)
client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=256)
client.embeddings.create(model="text-embedding-3-small", input="hi")
""",
        """
def ask(client, **params):
    return client.chat.completions.create(**params)
""",
        """
from twilio.rest import Client
Client().messages.create(to="+15550100", from_="+15550101", body="hi")
""",
    )
    INVALID = (
        Invalid(
            "from openai import OpenAI\nclient = OpenAI(timeout=30)\nclient.chat.completions.create(model='gpt-4o-mini', messages=[])\n",
            fixed="from openai import OpenAI\nclient = OpenAI(timeout=30)\n"
            "client.chat.completions.create(model='gpt-4o-mini', messages=[], max_completion_tokens=1024)\n",
        ),
        Invalid(
            "import litellm\nr = litellm.completion(model='anthropic/claude-3-5-haiku-latest', messages=[])\n",
            fixed="import litellm\nr = litellm.completion(model='anthropic/claude-3-5-haiku-latest', messages=[], "
            "max_tokens=1024)\n",
        ),
        Invalid("def ask(llm, text):\n    return llm.responses.create(model='gpt-4.1', input=text)\n"),
        Invalid(
            "from langchain_anthropic import ChatAnthropic\nllm = ChatAnthropic(model='claude-3-5-sonnet-latest', timeout=30)\n"
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if ctx.config.skips_test_rules(ctx.path):
            return
        for call in ctx.llm_calls:
            if not call.generates:
                continue
            given = ctx.call_passes(call, *call.max_tokens_args)
            if given is True:
                continue
            confidence = call.confidence if given is False else "low"
            note = ctx.star_note(call.node, call.scope) if given is None else ""
            n = ctx.config.fix_max_tokens
            fix_arg = call.fix_arg if confidence == "high" else None  # never fix a call we only guessed
            yield Report(
                call.node,
                _message(call) + note,
                confidence=confidence,
                fix=f"add {fix_arg}={n}" if fix_arg is not None else None,
                edit=AddKeyword(call.node, fix_arg, str(n)) if fix_arg is not None else None,
            )


def _message(call: LLMCall) -> str:
    names = " or ".join(call.max_tokens_args)
    return f"LLM call without {names}: the output (and its cost) is bounded only by the context window"
