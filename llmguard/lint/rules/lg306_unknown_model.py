"""LG306: a literal model name that genai-prices does not know (probably misspelt or retired)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from functools import cache

from llmguard.lint.context import FileContext, LLMCall
from llmguard.lint.findings import Report
from llmguard.lint.rules.base import Invalid, Rule
from llmguard.lint.values import keyword

# Providers whose model lists genai-prices knows well enough that an unknown name is news.
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}
_LITELLM_PREFIXES = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
# Names each provider's own models start with: a name outside them goes to some other server.
_FAMILIES = {
    "openai": re.compile(r"^(?:gpt-|chatgpt-|o\d|text-embedding-|text-davinci|davinci|babbage|computer-use|codex-)"),
    "anthropic": re.compile(r"^claude-"),
    "google": re.compile(r"^gemini-"),
}
_BASE_URL_ARGS = ("base_url", "openai_api_base", "api_base", "anthropic_api_url")


class UnknownModel(Rule):
    code = "LG306"
    skips_tests = True
    name = "unknown-model"
    summary = "A literal model name is unknown to genai-prices: probably misspelt or retired (every call fails)."
    also = ("model",)
    what = """
Flags a literal `model=` on an OpenAI or Anthropic SDK call, `litellm.completion()` (with an
`openai/`, `anthropic/` or `gemini/` model, or a bare one of those families) or a LangChain
`ChatOpenAI`/`ChatAnthropic` when genai-prices' bundled price list (read offline) does not know
it, and suggests the closest known name. Not flagged: clients with a custom `base_url` (another
server, such as Ollama or vLLM, with its own names), Azure deployments, Bedrock and Vertex ids,
fine-tuned `ft:` models, names neither shaped like the provider's own (`gpt-…`, `claude-…`) nor
close to a known one (`"m"`, an alias), and, on calls whose client cannot be resolved, names
outside the provider's own families (`llama3.1:8b`). Test files (tests/, test_*.py), whose stub
clients often take made-up names, are skipped unless `include-tests = true`.
"""
    why = """
A misspelt or retired model fails every call with a 404 (`model_not_found`), often only in the
branch or the notebook cell that nobody ran before release. Even when a proxy accepts it, its
cost is unknown: budgets and cost reports cannot count it.
"""
    example = """
client.chat.completions.create(model="gpt-4o-mni", messages=msgs, max_tokens=300)
"""
    use_instead = """
client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=300)
"""
    VALID = (
        """
from openai import OpenAI
import anthropic
client = OpenAI(timeout=30)
client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=[], max_tokens=50)
client.embeddings.create(model="text-embedding-3-small", input="hi")
anthropic.Anthropic(timeout=30).messages.create(model="claude-3-5-haiku-latest", max_tokens=50, messages=[])
""",
        """
from openai import OpenAI
local = OpenAI(base_url="http://localhost:11434/v1", api_key="ollama", timeout=30)
local.chat.completions.create(model="llama3.1:8b", messages=[], max_tokens=50)
local.chat.completions.create(model="gpt-oss:20b", messages=[], max_tokens=50)
""",
        """
def ask(llm, msgs):
    return llm.chat.completions.create(model="qwen2.5-coder", messages=msgs, max_tokens=50)
""",
    )
    INVALID = (
        Invalid("""
from openai import OpenAI
client = OpenAI(timeout=30)
client.chat.completions.create(model="gpt-4o-mni", messages=[], max_tokens=50)
"""),
        Invalid("""
import anthropic
MODEL = "claude-3-5-sonet-latest"
client = anthropic.Anthropic(timeout=30)
def ask(msgs):
    return client.messages.create(model=MODEL, max_tokens=200, messages=msgs)
"""),
        Invalid(
            "import litellm\nlitellm.completion(model='openai/gpt4o-mini', messages=[], max_tokens=9, timeout=9)\n"
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Report]:
        if ctx.config.skips_test_rules(ctx.path):
            return  # test doubles and fixtures (include-tests = true runs it)
        names_a_server = "base_url" in ctx.source or "api_base" in ctx.source
        for call in ctx.llm_calls:
            if call.endpoint == "custom":
                continue
            arg = keyword(call.node, *call.model_args)
            model = ctx.model_of(call)
            if arg is None or model is None:
                continue
            target = _provider_and_name(call, model)
            if target is None or _custom_server(ctx, call, names_a_server):
                continue
            provider, name = target
            family = _FAMILIES[provider].match(name.lower()) is not None
            if (call.confidence == "low" and not family) or known(provider, name):
                continue  # an unresolved client with another vendor's name goes to some other server
            suggestion = closest(provider, name)
            if suggestion is None and not family:
                continue  # "m", "my-deployment": an alias or a placeholder, not a misspelt model
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            confidence = "high" if suggestion and call.confidence == "high" else "low"
            yield Report(
                arg,
                f"model {name!r} is not in genai-prices' {provider} price list{hint}: a misspelt or "
                "retired model fails every call (404), and its cost cannot be tracked or budgeted",
                anchor=call.node,
                confidence=confidence,
            )


def _provider_and_name(call: LLMCall, model: str) -> tuple[str, str] | None:
    """(genai-prices provider, model name) to look up, or None when we cannot know the server's names."""
    if not model or model.startswith("ft:") or any(c.isspace() for c in model):
        return None
    if call.endpoint == "wrapper" and call.family == "litellm":
        prefix, slash, rest = model.partition("/")
        if slash:
            provider = _LITELLM_PREFIXES.get(prefix)
            return (provider, rest) if provider and rest else None
        for provider, family in _FAMILIES.items():
            if family.match(model.lower()):
                return provider, model
        return None
    provider = _PROVIDERS.get(call.provider)
    if provider is None or "/" in model or ":" in model:
        return None  # Azure deployments, Bedrock/Vertex ids, router-style or Ollama names
    return provider, model


def _custom_server(ctx: FileContext, call: LLMCall, names_a_server: bool) -> bool:
    """A client (or LangChain model, or LiteLLM call) pointed at a base URL of its own, or Azure's."""
    if call.is_constructor and (ctx.qualify(call.node.func) or "").endswith("AzureChatOpenAI"):
        return True  # the deployment decides the model
    if keyword(call.node, *_BASE_URL_ARGS) is not None:
        return True
    if any(keyword(c.root.node, "base_url") is not None for c in call.clients):
        return True
    return call.confidence == "low" and names_a_server  # the unresolved client may be that one


@cache
def known(provider: str, name: str) -> bool:
    from genai_prices.data_snapshot import get_snapshot

    try:
        get_snapshot().find_provider_model(name, None, provider, None)
    except LookupError:
        return False
    return True


@cache
def _names(provider: str) -> tuple[tuple[str, bool], ...]:
    """(name, is_prefix) for every model id and literal alias of a provider (for "did you mean")."""
    from genai_prices.data_snapshot import get_snapshot

    exact: set[str] = set()
    prefixes: set[str] = set()
    for entry in get_snapshot().providers:
        if entry.id != provider:
            continue
        for model in entry.models:
            stack = [model.match]
            while stack:
                clause = stack.pop()
                equals, starts = getattr(clause, "equals", None), getattr(clause, "starts_with", None)
                if isinstance(equals, str):
                    exact.add(equals.lower())
                if isinstance(starts, str):
                    prefixes.add(starts.lower())
                for attr in ("or_", "and_"):
                    stack.extend(getattr(clause, attr, None) or ())
    return tuple(sorted([(n, False) for n in exact] + [(n, True) for n in prefixes - exact]))


def closest(provider: str, name: str) -> str | None:
    """The known name nearest to `name` (a family prefix is compared with as much of `name`, shown as `x…`)."""
    name = name.lower()
    best, best_score = None, 0.8
    matcher = difflib.SequenceMatcher(b=name)
    for candidate, is_prefix in _names(provider):
        if is_prefix:
            score = difflib.SequenceMatcher(None, name[: len(candidate) + 1], candidate).ratio()
        else:
            matcher.set_seq1(candidate)
            if matcher.real_quick_ratio() <= best_score or matcher.quick_ratio() <= best_score:
                continue
            score = matcher.ratio()
        if score > best_score:
            best, best_score = (candidate + "…" if is_prefix else candidate), score
    return best
