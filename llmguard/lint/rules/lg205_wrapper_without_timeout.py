"""LG205: a LangChain chat model or a LiteLLM call without a timeout (LangChain's default is none at all)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from llmguard.lint.context import FileContext
from llmguard.lint.edits import AddKeyword, number_source
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import has_star_kwargs, is_none, keyword, keyword_name


@dataclass(frozen=True)
class _Wrapper:
    label: str  # how the message names it
    timeout_args: tuple[str, ...]  # any of these bounds it
    without: str  # what happens without one
    fix_arg: str | None = "timeout"  # None: no safe automatic fix
    positional_timeout: int | None = None  # index of a positional `timeout` parameter


_NO_TIMEOUT = "passes timeout=None to the {sdk} SDK, which then waits with no timeout at all"
_LC_OPENAI = _Wrapper("LangChain {name}", ("timeout", "request_timeout"), _NO_TIMEOUT.format(sdk="openai"))
_LC_ANTHROPIC = _Wrapper(
    "LangChain ChatAnthropic", ("timeout", "default_request_timeout"), _NO_TIMEOUT.format(sdk="anthropic")
)
_LC_ANTHROPIC_OLD = _Wrapper(
    "LangChain ChatAnthropic", ("timeout", "default_request_timeout"), _NO_TIMEOUT.format(sdk="anthropic"), fix_arg=None
)
_LC_GOOGLE = _Wrapper(
    "LangChain ChatGoogleGenerativeAI",
    ("timeout", "request_timeout"),
    "sets no request timeout, so a stalled call waits indefinitely",
)
_LITELLM = _Wrapper(
    "litellm.{name}()",
    ("timeout", "request_timeout"),
    "waits up to 600 s per attempt (litellm's default)",
    positional_timeout=2,
)

WRAPPERS: dict[str, _Wrapper] = {
    **{
        f"{module}.{name}": _LC_OPENAI
        for module in (
            "langchain_openai",
            "langchain_openai.chat_models",
            "langchain_community.chat_models",
            "langchain.chat_models",
        )
        for name in ("ChatOpenAI", "AzureChatOpenAI")
    },
    "langchain_openai.chat_models.base.ChatOpenAI": _LC_OPENAI,
    "langchain_openai.chat_models.azure.AzureChatOpenAI": _LC_OPENAI,
    "langchain_community.chat_models.openai.ChatOpenAI": _LC_OPENAI,
    "langchain_community.chat_models.azure_openai.AzureChatOpenAI": _LC_OPENAI,
    "langchain_anthropic.ChatAnthropic": _LC_ANTHROPIC,
    "langchain_anthropic.chat_models.ChatAnthropic": _LC_ANTHROPIC,
    "langchain_community.chat_models.ChatAnthropic": _LC_ANTHROPIC_OLD,
    "langchain_community.chat_models.anthropic.ChatAnthropic": _LC_ANTHROPIC_OLD,
    "langchain.chat_models.ChatAnthropic": _LC_ANTHROPIC_OLD,
    "langchain_google_genai.ChatGoogleGenerativeAI": _LC_GOOGLE,
    "langchain_google_genai.chat_models.ChatGoogleGenerativeAI": _LC_GOOGLE,
    "litellm.completion": _LITELLM,
    "litellm.acompletion": _LITELLM,
    "litellm.main.completion": _LITELLM,
    "litellm.main.acompletion": _LITELLM,
}


class WrapperWithoutTimeout(Rule):
    code = "LG205"
    skips_tests = True
    name = "wrapper-without-timeout"
    summary = "A LangChain chat model or a LiteLLM call has no timeout (LangChain's default is none at all)."
    fixable = True
    literals = ("ChatOpenAI", "ChatAnthropic", "ChatGoogleGenerativeAI", "litellm")
    what = """
Flags LangChain's `ChatOpenAI`, `AzureChatOpenAI`, `ChatAnthropic` and `ChatGoogleGenerativeAI`
constructed without `timeout=` (or its alias `request_timeout=` / `default_request_timeout=`),
and `litellm.completion()` / `acompletion()` called without `timeout=`. An explicit
`timeout=None` is flagged too (LG202 reports it where it already checks that argument, so it is
reported once). Calls passing `**kwargs` are not flagged, nor LiteLLM calls with
`mock_response=` or in a file that sets `litellm.request_timeout`. Like LG201, test files
(tests/, test_*.py, conftest.py) are skipped unless `include-tests = true`.
"""
    why = """
LangChain's chat models default to `timeout=None` and hand that to the provider SDK, which
treats it as "no timeout at all" (not as its own 600 s default): a stalled connection or stream
holds the chain, the agent or the notebook cell forever. LiteLLM falls back to 600 s per
attempt, and retries after that.
"""
    example = """
llm = ChatOpenAI(model="gpt-4o-mini", max_tokens=512)
reply = litellm.completion(model="anthropic/claude-3-5-haiku-latest", messages=msgs, max_tokens=300)
"""
    use_instead = """
llm = ChatOpenAI(model="gpt-4o-mini", max_tokens=512, timeout=30)
reply = litellm.completion(model="anthropic/claude-3-5-haiku-latest", messages=msgs, max_tokens=300, timeout=30)
"""
    VALID = (
        "from langchain_openai import ChatOpenAI\nllm = ChatOpenAI(model='gpt-4o-mini', max_tokens=100, timeout=30)\n",
        "from langchain_anthropic import ChatAnthropic\n"
        "llm = ChatAnthropic(model='claude-3-5-haiku-latest', max_tokens=100, default_request_timeout=20)\n",
        "import litellm\nlitellm.completion(model='gpt-4o-mini', messages=[], max_tokens=50, timeout=15)\n",
        """
import litellm
litellm.request_timeout = 30
def ask(msgs):
    return litellm.completion(model="gpt-4o-mini", messages=msgs, max_tokens=50)
""",
        """
from langchain_openai import ChatOpenAI
def make(**options):
    return ChatOpenAI(model="gpt-4o-mini", max_tokens=100, **options)
""",
    )
    INVALID = (
        Invalid(
            "from langchain_openai import ChatOpenAI\nllm = ChatOpenAI(model='gpt-4o-mini', max_tokens=100)\n",
            fixed="from langchain_openai import ChatOpenAI\n"
            "llm = ChatOpenAI(model='gpt-4o-mini', max_tokens=100, timeout=60)\n",
        ),
        Invalid(
            "from litellm import acompletion\nasync def ask(msgs):\n"
            "    return await acompletion(model='openai/gpt-4o-mini', messages=msgs, max_tokens=50)\n",
            fixed="from litellm import acompletion\nasync def ask(msgs):\n"
            "    return await acompletion(model='openai/gpt-4o-mini', messages=msgs, max_tokens=50, timeout=60)\n",
        ),
        Invalid(
            "from langchain_google_genai import ChatGoogleGenerativeAI\n"
            "llm = ChatGoogleGenerativeAI(model='gemini-2.0-flash', max_output_tokens=256, timeout=None)\n"
        ),
        Invalid(
            "import langchain_anthropic as lca\n\nclass Bot:\n    def __init__(self):\n"
            "        self.llm = lca.ChatAnthropic(\n            model='claude-3-5-haiku-latest',\n"
            "            max_tokens=200,\n        )\n",
            fixed="import langchain_anthropic as lca\n\nclass Bot:\n    def __init__(self):\n"
            "        self.llm = lca.ChatAnthropic(\n            model='claude-3-5-haiku-latest',\n"
            "            max_tokens=200,\n            timeout=60,\n        )\n",
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if ctx.config.skips_test_rules(ctx.path):
            return  # test doubles and fixtures (include-tests = true runs it)
        litellm_global = None
        for call, _scope in ctx.index.calls:
            qualified = ctx.qualify(call.func)
            wrapper = WRAPPERS.get(qualified or "")
            if wrapper is None or has_star_kwargs(call):
                continue
            label = wrapper.label.format(name=qualified.rsplit(".", 1)[-1]) if qualified else wrapper.label
            if wrapper is _LITELLM:
                if litellm_global is None:
                    litellm_global = _sets_litellm_timeout(ctx)
                if litellm_global or _positional_timeout(call, wrapper) or keyword(call, "mock_response"):
                    continue  # mock_response=: answered locally, no request is sent
            arg = keyword(call, *wrapper.timeout_args)
            if arg is None:
                seconds = number_source(ctx.config.fix_timeout_s)
                edit = AddKeyword(call, wrapper.fix_arg, seconds) if wrapper.fix_arg else None
                fix = f"add {wrapper.fix_arg}={seconds}" if wrapper.fix_arg else None
                yield Report(
                    call,
                    f"{label} without {wrapper.timeout_args[0]}= {wrapper.without}; "
                    f"pass {wrapper.timeout_args[0]}= in seconds",
                    fix=fix,
                    edit=edit,
                )
            elif is_none(arg.value) and wrapper is not _LITELLM and not _checked_by_lg202(ctx, call, arg):
                yield Report(
                    arg,
                    f"{label} with {keyword_name(arg)}=None {wrapper.without}; pass a timeout in seconds",
                    anchor=call,
                )


def _checked_by_lg202(ctx: FileContext, call: cst.Call, arg: cst.Arg) -> bool:
    """LG202 reports `timeout=None` on the LLM calls it knows; report it once."""
    found = ctx.llm_call_ids.get(id(call))
    return found is not None and arg.keyword is not None and arg.keyword.value in found.timeout_args


def _sets_litellm_timeout(ctx: FileContext) -> bool:
    """`litellm.request_timeout = 30` anywhere in the file bounds every call made through it."""
    for key in ctx.index.assignments:
        head, _, rest = key.partition(".")
        if rest == "request_timeout" and ctx.imports.aliases.get(head) == "litellm":
            return True
    return False


def _positional_timeout(call: cst.Call, wrapper: _Wrapper) -> bool:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return wrapper.positional_timeout is not None and len(positional) > wrapper.positional_timeout
