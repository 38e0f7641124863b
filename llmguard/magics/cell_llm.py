"""`%%llm`: the cell is a prompt; the answer streams into the output, through the guard.

The call is an ordinary openai/anthropic SDK call, so the guard applies its limits, budget, cache
and ledger exactly as to any other call. `{name}` placeholders are filled from the user namespace
(unknown names stay as written; `{{` and `}}` are literal braces).

Where the answer goes: `--base-url`, else the session default (`%llmguard llm --base-url ...`),
else `LLMGUARD_LLM_BASE_URL` (OpenAI provider), else the SDK's own `OPENAI_BASE_URL` /
`ANTHROPIC_BASE_URL`, else the provider's API. Any OpenAI-compatible server works (vLLM, Ollama,
llama.cpp, LM Studio); one that needs no key gets a placeholder key.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

import llmguard
from llmguard.magics.output import count, note, show, usd
from llmguard.magics.parsing import UsageParser, positive_int

PROVIDERS = ("openai", "anthropic")
FORMATS = ("markdown", "text", "json", "code")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
DEFAULT_MAX_TOKENS = 1024
_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_BASE_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
_OFFICIAL_HOSTS = ("api.openai.com", "api.anthropic.com")
_PLACEHOLDER_KEY = "sk-no-key-needed"
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_STREAM_REFRESH_S = 0.05


@dataclass
class LLMDefaults:
    """Session defaults for `%%llm` (`%llmguard llm ...`), seeded from LLMGUARD_LLM_* variables."""

    provider: str = "openai"
    model: str | None = None
    base_url: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LLMDefaults:
        environ = dict(os.environ if environ is None else environ)
        provider = environ.get("LLMGUARD_LLM_PROVIDER", "openai").strip().lower()
        max_tokens = environ.get("LLMGUARD_LLM_MAX_TOKENS", "")
        return cls(
            provider=provider if provider in PROVIDERS else "openai",
            model=environ.get("LLMGUARD_LLM_MODEL") or None,
            base_url=environ.get("LLMGUARD_LLM_BASE_URL") or None,
            max_tokens=int(max_tokens) if max_tokens.isdigit() and int(max_tokens) > 0 else DEFAULT_MAX_TOKENS,
        )

    def describe(self) -> str:
        return (
            f"%%llm defaults: provider {self.provider}, model {self.model or DEFAULT_MODELS[self.provider]}, "
            f"max tokens {self.max_tokens}, base URL {self.base_url or '(the SDK default)'}"
        )


class LLMCallError(Exception):
    """The model call of a `%%llm` cell failed; shown as one line (the `llmguard:` message when refused)."""

    def _render_traceback_(self) -> list[str]:
        return [f"LLMCallError: {self}"]


def build_parser() -> UsageParser:
    parser = UsageParser(
        prog="%%llm",
        description="Send the cell as a prompt to a model and stream the answer into the output.\n"
        "{name} in the cell is replaced by the variable `name` (unknown names stay as written).",
    )
    parser.add_argument("-m", "--model", help="model name (default: gpt-4o-mini / claude-3-5-haiku-latest)")
    parser.add_argument(
        "--provider", choices=PROVIDERS, help="wire format: openai (any OpenAI-compatible server) or anthropic"
    )
    parser.add_argument("--system", help="system prompt ({name} placeholders are filled too)")
    parser.add_argument(
        "--max-tokens", type=positive_int, help=f"output bound (default {DEFAULT_MAX_TOKENS}; always sent)"
    )
    parser.add_argument("--temperature", type=float, help="sampling temperature (0 makes the answer cacheable)")
    parser.add_argument("-o", "--out", metavar="VAR", help="store the answer in this variable (json: the parsed value)")
    parser.add_argument(
        "--format", choices=FORMATS, default="markdown", help="how to show the answer (code: into a new cell below)"
    )
    parser.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument("--no-cache", action="store_true", help="do not answer from (or store in) llmguard's cache")
    caching.add_argument(
        "--fresh", action="store_true", help="draw a new answer and store it in place of the one replayed so far"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="send nothing: show the prompt, its tokens and the worst-case cost"
    )
    parser.add_argument("--base-url", help="the API's base URL, as the SDK takes it (e.g. http://127.0.0.1:8000/v1)")
    return parser


PARSER = build_parser()

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, namespace: dict[str, Any]) -> str:
    """`{name}` → str(namespace[name]); unknown names and everything else stay as written."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        return str(namespace[name]) if name in namespace else token

    return _PLACEHOLDER.sub(replace, template)


def run(ext: Any, line: str, cell: str) -> None:
    """The `%%llm` cell magic."""
    args = PARSER.parse_argstring(line)
    ns = ext.ip.user_ns
    prompt = fill(cell, ns).strip()
    if not prompt:
        raise UsageError(
            "%%llm: the cell has no prompt: write it on the lines below %%llm\n" + PARSER.format_usage().strip()
        )
    defaults: LLMDefaults = ext.llm_defaults
    provider = args.provider or defaults.provider
    model = args.model or defaults.model or DEFAULT_MODELS[provider]
    if args.model is None and defaults.model is not None and args.provider and args.provider != defaults.provider:
        model = DEFAULT_MODELS[provider]
    max_tokens = args.max_tokens or defaults.max_tokens
    system = fill(args.system, ns) if args.system else None
    if args.dry_run:
        _dry_run(provider, model, prompt, system, max_tokens)
        return
    base_url = args.base_url or defaults.base_url
    client = ext.llm_client(provider, base_url)
    guard = llmguard.current()
    before = guard.metrics.snapshot() if guard is not None else None
    started = time.perf_counter()
    display = _StreamDisplay(args.format, terminal=getattr(ext.ip, "kernel", None) is None)
    try:
        with llmguard.tag(**_cache_tag(args)):
            ask = Ask(model, prompt, system, max_tokens, args.temperature, stream=not args.no_stream)
            text = (_anthropic if provider == "anthropic" else _openai)(client, ask, display)
    except Exception as exc:
        display.finish(final=False)
        message = _sdk_message(exc)
        if message is None:
            raise
        raise LLMCallError(message) from exc
    value: Any = text
    if args.format == "json":
        value = _as_json(text)
        display.finish(json_value=value)
    elif args.format == "code":
        display.finish()
        code = _code_of(text)
        ext.ip.set_next_input(code, replace=False)
        value = code
    else:
        display.finish()
    if args.out:
        if not args.out.isidentifier():
            raise UsageError(f"%%llm: --out {args.out!r} is not a variable name")
        ns[args.out] = value
    _footer(guard, before, model, time.perf_counter() - started, args)


def _cache_tag(args: Any) -> dict[str, str]:
    """`--no-cache` skips the cache; `--fresh` sends the call and replaces the stored answer."""
    if args.no_cache:
        return {"cache": "off"}
    return {"cache": "refresh"} if args.fresh else {}


class _StreamDisplay:
    """The answer as it arrives: one output updated in place (a display handle, ~20 updates a second).

    In a terminal IPython, where an updated display would print again, the pieces are written to
    stdout as they come instead (this runs on the main thread, inside the cell).
    """

    def __init__(self, fmt: str, terminal: bool = False) -> None:
        self.format = fmt
        self.text = ""
        self.terminal = terminal
        self._last = 0.0
        self.handle: Any = None
        if not terminal:
            from IPython.display import display

            self.handle = display({"text/plain": "…"}, raw=True, display_id=True)

    def add(self, piece: str) -> None:
        self.text += piece
        if self.terminal:
            sys.stdout.write(piece)
            sys.stdout.flush()
            return
        now = time.monotonic()
        if now - self._last >= _STREAM_REFRESH_S:
            self._last = now
            self.handle.update({"text/plain": self.text + " …"}, raw=True)

    def finish(self, final: bool = True, json_value: Any = None) -> None:
        text = self.text
        if self.terminal:
            sys.stdout.write("\n")
            if json_value is not None and not isinstance(json_value, str):
                sys.stdout.write(json.dumps(json_value, indent=2) + "\n")
            return
        if not final:
            bundle = {"text/plain": text or "(no answer)"}
        elif self.format == "markdown":
            bundle = {"text/markdown": text, "text/plain": text}
        elif self.format == "json" and json_value is not None and not isinstance(json_value, str):
            bundle = {"application/json": json_value, "text/plain": json.dumps(json_value, indent=2)}
        else:
            bundle = {"text/plain": text}
        self.handle.update(bundle, raw=True)


@dataclass(frozen=True)
class Ask:
    """What one `%%llm` cell sends, whichever the provider."""

    model: str
    prompt: str
    system: str | None
    max_tokens: int
    temperature: float | None = None
    stream: bool = True


def _openai(client: Any, ask: Ask, display: _StreamDisplay) -> str:
    system, prompt = ask.system, ask.prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    bound = "max_completion_tokens" if ask.model.startswith(_REASONING_PREFIXES) else "max_tokens"
    kwargs: dict[str, Any] = {"model": ask.model, "messages": messages, bound: ask.max_tokens}
    if ask.temperature is not None:
        kwargs["temperature"] = ask.temperature
    if not ask.stream:
        reply = client.chat.completions.create(**kwargs)
        display.add((reply.choices[0].message.content or "") if reply.choices else "")
        return display.text
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices or ():
            piece = getattr(choice.delta, "content", None)
            if piece:
                display.add(piece)
    return display.text


def _anthropic(client: Any, ask: Ask, display: _StreamDisplay) -> str:
    kwargs: dict[str, Any] = {
        "model": ask.model,
        "max_tokens": ask.max_tokens,
        "messages": [{"role": "user", "content": ask.prompt}],
    }
    if ask.system:
        kwargs["system"] = ask.system
    if ask.temperature is not None:
        kwargs["temperature"] = ask.temperature
    if not ask.stream:
        reply = client.messages.create(**kwargs)
        display.add("".join(getattr(block, "text", "") for block in reply.content))
        return display.text
    for event in client.messages.create(stream=True, **kwargs):
        if getattr(event, "type", None) == "content_block_delta":
            piece = getattr(event.delta, "text", None)
            if piece:
                display.add(piece)
    return display.text


def _sdk_message(exc: BaseException) -> str | None:
    """The readable message of an SDK error (the `llmguard:` text for a refusal); None for other errors."""
    module = type(exc).__module__.split(".")[0]
    if module not in ("openai", "anthropic"):
        return None
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return getattr(exc, "message", None) or str(exc)


def _dry_run(provider: str, model: str, prompt: str, system: str | None, max_tokens: int) -> None:
    from llmguard.policies import tokens
    from llmguard.policies.pricing import default_pricer

    counted = tokens.count_messages([{"role": "user", "content": prompt}], model, system=system)
    guard = llmguard.current()
    pricer = guard.pricer if guard is not None else default_pricer()
    worst = pricer.worst_case(provider, model, counted.tokens, max_tokens)
    approx = " (approximate)" if counted.approximate else ""
    cost = "unknown (no price for this model)" if worst is None else usd(float(worst))
    summary = (
        f"%%llm dry run · {provider} {model} · {counted.tokens:,} prompt tokens{approx} + up to "
        f"{max_tokens:,} output tokens · worst case {cost} · nothing was sent"
    )
    preview = prompt if len(prompt) <= 2000 else prompt[:2000] + f"… ({len(prompt):,} characters)"
    show(f"{summary}\n---\n{preview}", None)


def _footer(guard: Any, before: dict[str, Any] | None, model: str, seconds: float, args: Any) -> None:
    if guard is None or before is None:
        return
    after = guard.metrics.snapshot()
    parts = [model]
    spent_in = after["input_tokens"] - before["input_tokens"]
    spent_out = after["output_tokens"] - before["output_tokens"]
    parts.append(f"{count(spent_in)} in / {count(spent_out)} out tokens")
    parts.append(usd(after["cost_usd"] - before["cost_usd"]))
    if after["cache_hits"] > before["cache_hits"]:
        parts.append("from the cache")
    parts.append(f"{seconds * 1000:,.0f} ms")
    if args.out:
        parts.append(f"stored in {args.out}")
    if args.format == "code":
        parts.append("code inserted in a new cell below")
    note("llmguard · " + " · ".join(parts))


def _code_of(text: str) -> str:
    fenced = re.search(r"```[\w+.-]*[ \t]*\n(.*?)```", text, re.DOTALL)
    return (fenced.group(1) if fenced else text).strip("\n")


def _as_json(text: str) -> Any:
    try:
        return json.loads(_code_of(text))
    except ValueError:
        note("%%llm --format json: the answer is not valid JSON; kept as text", "warn")
        return text


def make_client(provider: str, base_url: str | None) -> Any:
    """An SDK client for `%%llm`; the key comes from the SDK's usual variable."""
    if provider == "openai" and base_url is None:
        base_url = os.environ.get("LLMGUARD_LLM_BASE_URL") or None
    effective = base_url or os.environ.get(_BASE_ENV[provider])
    key = os.environ.get(_KEY_ENV[provider])
    if not key:
        if effective and not any(host in effective for host in _OFFICIAL_HOSTS):
            key = _PLACEHOLDER_KEY  # a local OpenAI-compatible server: most ignore the key
        else:
            raise UsageError(
                f"%%llm: no API key for {provider}: set {_KEY_ENV[provider]}, or point --base-url "
                "(or LLMGUARD_LLM_BASE_URL) at a server that needs none"
            )
    if provider == "anthropic":
        import anthropic

        return anthropic.Anthropic(api_key=key, base_url=base_url, timeout=120.0)
    import openai

    return openai.OpenAI(api_key=key, base_url=base_url, timeout=120.0)
