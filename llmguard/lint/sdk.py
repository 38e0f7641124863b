"""What the linter knows about LLM SDKs, wrappers, retry libraries and HTTP clients. Data only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientKind:
    family: str  # "openai" | "anthropic": which SDK's method shapes and argument names apply
    provider: str  # genai-prices provider id, for the cost map


CLIENTS: dict[str, ClientKind] = {
    **{f"openai.{n}": ClientKind("openai", "openai") for n in ("OpenAI", "AsyncOpenAI", "Client", "AsyncClient")},
    **{f"openai.{n}": ClientKind("openai", "azure") for n in ("AzureOpenAI", "AsyncAzureOpenAI")},
    **{
        f"anthropic.{n}": ClientKind("anthropic", "anthropic")
        for n in ("Anthropic", "AsyncAnthropic", "Client", "AsyncClient")
    },
    **{f"anthropic.{n}": ClientKind("anthropic", "aws") for n in ("AnthropicBedrock", "AsyncAnthropicBedrock")},
    **{f"anthropic.{n}": ClientKind("anthropic", "google") for n in ("AnthropicVertex", "AsyncAnthropicVertex")},
}
SDK_MODULES = {"openai": "openai", "anthropic": "anthropic"}


@dataclass(frozen=True)
class Endpoint:
    name: str  # "chat.completions", "responses", "messages", "completions", "embeddings"
    family: str | None  # None when the shape exists in both SDKs
    max_tokens_args: tuple[str, ...]  # the arguments that bound the output; () = no output to bound
    fix_arg: str | None = None  # the argument --fix adds


# Trailing attribute names of a call -> endpoint. `client.beta.` prefixes are accepted too.
SHAPES: dict[tuple[str, ...], Endpoint] = {}
for _verb in ("create", "parse", "stream"):
    SHAPES[("chat", "completions", _verb)] = Endpoint(
        "chat.completions", "openai", ("max_tokens", "max_completion_tokens"), "max_completion_tokens"
    )
    SHAPES[("responses", _verb)] = Endpoint("responses", "openai", ("max_output_tokens",), "max_output_tokens")
    SHAPES[("messages", _verb)] = Endpoint("messages", "anthropic", ("max_tokens",), "max_tokens")
SHAPES[("completions", "create")] = Endpoint("completions", None, ("max_tokens", "max_tokens_to_sample"), "max_tokens")
SHAPES[("embeddings", "create")] = Endpoint("embeddings", "openai", ())
SHAPES[("ChatCompletion", "create")] = Endpoint("chat.completions", "openai", ("max_tokens",), "max_tokens")
SHAPES[("ChatCompletion", "acreate")] = SHAPES[("ChatCompletion", "create")]
SHAPES[("Completion", "create")] = Endpoint("completions", "openai", ("max_tokens",), "max_tokens")
SHAPES[("Completion", "acreate")] = SHAPES[("Completion", "create")]
SHAPE_LENGTHS = sorted({len(s) for s in SHAPES}, reverse=True)


@dataclass(frozen=True)
class Wrapper:
    """A library function or class that sends (or configures) LLM calls itself."""

    family: str
    provider: str
    max_tokens_args: tuple[str, ...]
    fix_arg: str
    timeout_args: tuple[str, ...] = ("timeout",)
    model_args: tuple[str, ...] = ("model",)
    is_constructor: bool = False  # LangChain chat models: configured once, called later


_LC_OPENAI = Wrapper(
    "openai",
    "openai",
    ("max_tokens", "max_completion_tokens"),
    "max_tokens",
    ("timeout", "request_timeout"),
    ("model", "model_name"),
    True,
)
_LC_ANTHROPIC = Wrapper(
    "anthropic",
    "anthropic",
    ("max_tokens", "max_tokens_to_sample"),
    "max_tokens",
    ("timeout", "default_request_timeout"),
    ("model", "model_name"),
    True,
)
_LITELLM = Wrapper("litellm", "openai", ("max_tokens", "max_completion_tokens"), "max_tokens")
WRAPPERS: dict[str, Wrapper] = {
    "litellm.completion": _LITELLM,
    "litellm.acompletion": _LITELLM,
    "litellm.text_completion": _LITELLM,
    **{
        f"{m}.{n}": _LC_OPENAI
        for m in (
            "langchain_openai",
            "langchain_community.chat_models",
            "langchain.chat_models",
            "langchain_openai.chat_models",
        )
        for n in ("ChatOpenAI", "AzureChatOpenAI")
    },
    **{
        f"{m}.ChatAnthropic": _LC_ANTHROPIC
        for m in (
            "langchain_anthropic",
            "langchain_community.chat_models",
            "langchain.chat_models",
            "langchain_anthropic.chat_models",
        )
    },
}

TENACITY_RETRY = {"tenacity.retry"}
TENACITY_RETRYING = {"tenacity.Retrying", "tenacity.AsyncRetrying", "tenacity.asyncio.AsyncRetrying"}
TENACITY_BROAD = {"tenacity.retry_if_exception_type"}
BACKOFF_DECORATORS = {"backoff.on_exception", "backoff.on_predicate"}

HTTP_FUNCTIONS = {  # httpx2 (the fork the new SDKs send through) behaves as httpx: one family
    f"{lib}.{verb}": "httpx" if lib == "httpx2" else lib
    for lib in ("requests", "httpx", "httpx2")
    for verb in ("get", "post", "put", "patch", "delete", "request", "stream")
}
HTTP_SESSIONS = {
    "requests.Session": "requests",
    "requests.session": "requests",
    "requests.sessions.Session": "requests",
    "httpx.Client": "httpx",
    "httpx.AsyncClient": "httpx",
    "httpx2.Client": "httpx",
    "httpx2.AsyncClient": "httpx",
    "aiohttp.ClientSession": "aiohttp",
}
HTTP_VERBS = {"get", "post", "put", "patch", "delete", "request", "stream"}
LLM_API_HOSTS = (
    "api.openai.com",
    "api.anthropic.com",
    ".openai.azure.com",
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "bedrock-runtime.",
    "api.mistral.ai",
    "api.groq.com",
    "api.together.xyz",
    "api.together.ai",
    "api.cohere.ai",
    "api.cohere.com",
    "api.deepseek.com",
    "openrouter.ai/api",
    "api.fireworks.ai",
    "api.perplexity.ai",
    "api.x.ai",
)
# Endpoint paths that only LLM APIs (and the servers that mimic them: vLLM, Ollama, LiteLLM's proxy,
# llama.cpp) serve, found anywhere in a URL: self-hosted and proxied endpoints have no known host.
LLM_API_PATHS = (
    "/chat/completions",
    "/v1/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/embeddings",
    ":generateContent",
    ":streamGenerateContent",
    ":embedContent",
    ":batchEmbedContents",
    ":rawPredict",
    ":streamRawPredict",
)
# Shorter paths that other APIs use too: an LLM endpoint only when the URL ends with them
# (`f"{base_url}/completions"`, not `/users/completions-report`).
LLM_API_TAIL_PATHS = ("/completions", "/responses", "/embeddings", "/api/generate", "/api/chat", "/api/embed")
# The literals that name an LLM API in a URL (the raw-HTTP rules' prefilter). `LLM_HOSTS` keeps the
# name prefilter.py uses; it holds paths too.
LLM_URL_LITERALS = LLM_API_HOSTS + LLM_API_PATHS + LLM_API_TAIL_PATHS
LLM_HOSTS = LLM_URL_LITERALS

# Text a file must contain for any rule about SDK calls to match (the literal prefilter).
SDK_LITERALS = (
    "openai",
    "OpenAI",
    "anthropic",
    "Anthropic",
    "litellm",
    "ChatOpenAI",
    "ChatAnthropic",
    ".completions.",
    ".messages.",
    ".responses.",
    "ChatCompletion",
    "Completion.create",
)
RETRY_LITERALS = ("tenacity", "backoff")

# Qualified names a `from X import *` may provide (for the star-import case of the alias pass).
KNOWN_NAMES = frozenset(
    set(CLIENTS)
    | set(WRAPPERS)
    | TENACITY_RETRY
    | TENACITY_RETRYING
    | TENACITY_BROAD
    | BACKOFF_DECORATORS
    | {
        "tenacity.stop_after_attempt",
        "tenacity.stop_after_delay",
        "tenacity.wait_exponential",
        "tenacity.wait_random_exponential",
        "tenacity.wait_fixed",
        "backoff.expo",
        "backoff.constant",
    }
)
PROMPT_NAME_WORDS = ("prompt", "template", "instruction", "system_message", "system_msg")
