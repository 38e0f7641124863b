"""The simulated Anthropic Messages API: messages (JSON and SSE), count_tokens, and a clear 404 for
the Message Batches API, which the simulator does not offer.

A messages call may carry prompt caching (`anthropic_cache.py`: breakpoints, TTLs, the per-model
minimum), extended thinking and tools. The answer is a list of content blocks:

* **thinking** (`thinking: {"type": "enabled", "budget_tokens": N}`, 1024 ≤ N < max_tokens): a
  thinking block comes first. The model "wants" to think 256–4096 tokens (from the request digest)
  and stops at the budget; the text is `llmguard.sim.text` pieces (one token each) and the
  signature a deterministic opaque string. `{"type": "adaptive"}` thinks the same way within half
  of max_tokens. Thinking tokens are output tokens (`usage.output_tokens`, with
  `output_tokens_details.thinking_tokens`) and share the max_tokens bound with the answer.
* **tool_use** (`tools` + `tool_choice`, the choice by `structured.choose_tool`): one call whose
  `input` validates against the tool's `input_schema` (`structured.instance_for`), stop_reason
  `tool_use`; a turn whose last message carries a `tool_result` gets a text answer under `auto`.
  Output tokens of a call = tiktoken tokens of its input JSON text (`json.dumps`, the spaced form
  Anthropic streams) + tokens of its name. A call cut by max_tokens keeps its streamed prefix; the
  plain JSON answer then has `input: {}` (the simulator does not parse partial JSON).
* **text** otherwise (`completion.make_completion`, cut at what thinking left of max_tokens).

The `no_usage` fault answers normally but says nothing of usage: `"usage": null` in a JSON answer
(the SDK then gives `message.usage is None`), empty usage objects in a stream (see
`anthropic_api.message_stream`). The call is still billed: the provider did the work.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmguard.sim import anthropic_api
from llmguard.sim.anthropic_api import Block
from llmguard.sim.anthropic_cache import AnthropicPromptCache, CacheControlError, PromptLayout, prompt_layout
from llmguard.sim.billing import BilledUsage
from llmguard.sim.completion import make_completion
from llmguard.sim.core import SimCore, anthropic_ids, json_response, parse_json, positive_int
from llmguard.sim.counting import encoding_for, message_tokens, text_tokens
from llmguard.sim.server import Request, Response
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for
from llmguard.sim.text import completion_pieces, request_digest

Handler = Callable[[Request], Response]

MIN_THINKING_BUDGET = 1024
THINKING_MIN, THINKING_MAX = 256, 4096  # what the model would think before any budget cut
_TOOL_CHOICES = ("auto", "any", "tool", "none")
_BUDGET_TOO_BIG = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)


class InvalidRequest(ValueError):
    """A request the real API answers with a 400; the message is what it says."""


def bad_request(message: str) -> Response:
    return json_response(400, anthropic_api.error(message), anthropic_ids())


# -- validation ------------------------------------------------------------------------------------


def check_basics(body: dict[str, Any] | None, need_max_tokens: bool) -> dict[str, Any]:
    if body is None:
        raise InvalidRequest("There was an error parsing the body of your request as JSON.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required")
    if need_max_tokens:
        if "max_tokens" not in body:
            raise InvalidRequest("max_tokens: Field required")
        if not positive_int(body["max_tokens"]):
            raise InvalidRequest("max_tokens: Input should be a valid integer greater than or equal to 1")
    return body


def tool_specs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's custom tools as `structured` takes them: [{"name", "parameters"}]."""
    tools = body.get("tools")
    if tools is None:
        if body.get("tool_choice") is not None:
            raise InvalidRequest("tool_choice may only be specified while providing tools")
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    specs = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools.{i}: Input should be a valid dictionary")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"tools.{i}.type: llmguard.sim does not simulate server or client tools ({kind!r}); "
                "define a custom tool with name and input_schema instead"
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"tools.{i}.custom.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise InvalidRequest(f"tools.{i}.custom.input_schema: Field required")
        specs.append({"name": tool["name"], "parameters": tool["input_schema"]})
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
            raise InvalidRequest(
                "tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                "'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise InvalidRequest("tool_choice.tool.name: Field required")
    return specs


def thinking_budget(body: dict[str, Any], max_tokens: int) -> int:
    """Tokens the answer may think (0: no thinking block)."""
    thinking = body.get("thinking")
    if thinking is None:
        return 0
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled", "between_tools"):
        return 0
    if kind == "adaptive":
        budget = max_tokens // 2
    elif kind == "enabled":
        if "budget_tokens" not in thinking:
            raise InvalidRequest("thinking.enabled.budget_tokens: Field required")
        budget = thinking["budget_tokens"]
        if not positive_int(budget) or budget < MIN_THINKING_BUDGET:
            raise InvalidRequest(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            )
        if budget >= max_tokens:
            raise InvalidRequest(_BUDGET_TOO_BIG)
    else:
        raise InvalidRequest(
            "thinking: Input tag found using 'type' does not match any of the expected tags: "
            "'enabled', 'disabled', 'adaptive', 'between_tools'"
        )
    choice = body.get("tool_choice")
    if budget and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise InvalidRequest("Thinking may not be enabled when tool_choice forces tool use.")
    return budget


def layout_of(body: dict[str, Any], raw: bytes) -> PromptLayout:
    """The prompt's breakpoints; without any `cache_control` in the body, just its token count."""
    model, messages, system, tools = body["model"], body["messages"], body.get("system"), body.get("tools")
    if b'"cache_control"' not in raw:
        return PromptLayout(message_tokens(messages, model, system=system, tools=tools), ())
    try:
        return prompt_layout(model, messages, system, tools, body.get("cache_control"))
    except CacheControlError as exc:
        raise InvalidRequest(str(exc)) from None


def after_tool_result(messages: list[Any]) -> bool:
    """Whether the conversation's last message hands tool results back."""
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def tool_call(body: dict[str, Any], specs: list[dict[str, Any]], seed: int) -> tuple[str, dict[str, Any]] | None:
    """(name, input) of the call this turn makes, or None for a text answer."""
    if not specs:
        return None
    digest = request_digest("messages.tool_use", body, seed)
    try:
        tool = choose_tool(specs, body.get("tool_choice"), digest, after_tool_result(body["messages"]))
    except ToolChoiceError as exc:
        raise InvalidRequest(f"tool_choice: {exc}") from None
    if tool is None:
        return None
    index = specs.index(tool)
    try:
        value = instance_for(tool["parameters"], digest)
    except SchemaError as exc:
        raise InvalidRequest(
            f"tools.{index}.custom.input_schema: llmguard.sim cannot build an input for this schema: {exc}"
        ) from None
    return tool["name"], value if isinstance(value, dict) else {}


# -- the answer ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    blocks: list[Block]
    output_tokens: int
    thinking_tokens: int
    hidden_tokens: int  # reasoning a non-Claude model name spends before the first piece
    stop_reason: str


def signature(digest: bytes, thinking: str) -> str:
    """An opaque, deterministic stand-in for the thinking block's signature."""
    raw = b"".join(
        hashlib.blake2b(digest + thinking.encode(), digest_size=64, person=bytes([i]) * 16).digest() for i in range(3)
    )
    return "Eq" + base64.b64encode(raw).decode()


def json_fragments(text: str, model: str) -> list[str]:
    """The text as streamed `partial_json` fragments, one per token (multi-token characters kept whole)."""
    encoding = encoding_for(model)
    out: list[str] = []
    pending = b""
    for token in encoding.decode_tokens_bytes(encoding.encode_ordinary(text)):
        pending += token
        try:
            out.append(pending.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = b""
    if pending:
        out.append(pending.decode("utf-8", "replace"))
    return out


def make_answer(
    body: dict[str, Any],
    model: str,
    max_tokens: int,
    budget: int,
    call: tuple[str, dict[str, Any]] | None,
    seed: int,
) -> Answer:
    blocks: list[Block] = []
    thinking = 0
    if budget:
        digest = request_digest("messages.thinking", body, seed)
        want = THINKING_MIN + int.from_bytes(digest[:4], "little") % (THINKING_MAX - THINKING_MIN + 1)
        pieces = completion_pieces(digest, min(want, budget))
        blocks.append(Block("thinking", pieces, signature=signature(digest, "".join(pieces))))
        thinking = len(pieces)
    room = max_tokens - thinking
    if call is not None:
        name, value = call
        fragments = json_fragments(json.dumps(value, ensure_ascii=False), model)
        cost = text_tokens(name, model) + text_tokens("".join(fragments), model)
        tool_id = anthropic_api.tool_use_id()
        if cost <= room:
            blocks.append(Block("tool_use", fragments, tool_id=tool_id, name=name, input=value))
            return Answer(blocks, thinking + cost, thinking, 0, "tool_use")
        keep = max(0, room - text_tokens(name, model))
        blocks.append(Block("tool_use", fragments[:keep], tool_id=tool_id, name=name, input={}))
        return Answer(blocks, max_tokens, thinking, 0, "max_tokens")
    completion = make_completion("messages", body, model, room, seed)
    blocks.append(Block("text", completion.pieces))
    stop = "max_tokens" if completion.truncated else "end_turn"
    hidden = completion.reasoning_tokens
    return Answer(blocks, thinking + completion.output_tokens, thinking, hidden, stop)


# -- routes ----------------------------------------------------------------------------------------


class AnthropicRoutes:
    """`cache` is the prompt cache (its `clock` can be replaced to step time in tests)."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.cache = AnthropicPromptCache()
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
        }

    def match(self, method: str, path: str) -> Handler | None:
        if path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):
            return self.batches
        return self._routes.get((method, path))

    def reset_cache(self) -> None:
        self.cache.clear()

    def messages(self, request: Request) -> Response:
        core = self.core
        try:
            body = check_basics(parse_json(request), need_max_tokens=True)
            model, max_tokens = body["model"], body["max_tokens"]
            specs = tool_specs(body)
            budget = thinking_budget(body, max_tokens)
            layout = layout_of(body, request.body)
            call = tool_call(body, specs, core.seed)
        except InvalidRequest as exc:
            return bad_request(str(exc))
        stream = body.get("stream") is True
        kind = core.faults.next()
        faulted = core.fault("anthropic", kind, stream, request)
        if faulted is not None:
            return faulted

        prompt = layout.total
        ids = anthropic_ids()
        adm = core.admit(model, prompt, max_tokens, kind)
        headers = ids + anthropic_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, anthropic_api.rate_limit_error(model, adm), headers)

        cache = self.cache.lookup_and_store(model, layout)
        answer = make_answer(body, model, max_tokens, budget, call, core.seed)
        out = answer.output_tokens
        use: dict[str, Any] | None = anthropic_api.usage(
            cache.input_tokens,
            out,
            cache.read,
            cache.write_5m,
            cache.write_1h,
            answer.thinking_tokens if budget else None,
        )
        usage = BilledUsage(
            input_tokens=prompt,
            cached_tokens=cache.read,
            cache_write_tokens=cache.written,
            cache_write_1h_tokens=cache.write_1h,
            output_tokens=out,
            reasoning_tokens=answer.thinking_tokens + answer.hidden_tokens,
        )

        def commit() -> None:
            core.stats.bill("anthropic", model, usage)

        if kind == "no_usage":
            core.stats.fault(kind)
            use = None
        mid = anthropic_api.message_id()
        if stream:
            preamble, events, tail = anthropic_api.message_stream(mid, model, answer.blocks, answer.stop_reason, use)
            parts = core.stream_parts(preamble, events, tail, answer.hidden_tokens)
            response = Response(200, [("content-type", anthropic_api.EVENT_STREAM), *headers], parts=parts)
        else:
            data = anthropic_api.message(mid, model, answer.blocks, answer.stop_reason, use)
            response = json_response(200, data, headers)
            response.delay_s = core.delay(out)
        return core.finish(response, kind, commit)

    def count_tokens(self, request: Request) -> Response:
        try:
            body = check_basics(parse_json(request), need_max_tokens=False)
            tool_specs(body)
            layout = layout_of(body, request.body)
        except InvalidRequest as exc:
            return bad_request(str(exc))
        return json_response(200, json.dumps({"input_tokens": layout.total}).encode(), anthropic_ids())

    @staticmethod
    def batches(request: Request) -> Response:
        message = (
            f"{anthropic_api.BATCHES_MISSING} ({request.method} {request.path}); "
            "send each request to POST /v1/messages instead."
        )
        return json_response(404, anthropic_api.error(message, "not_found_error"), anthropic_ids())
