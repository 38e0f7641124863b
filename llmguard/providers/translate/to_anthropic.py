"""Requests, OpenAI chat → Anthropic Messages (`openai_chat_to_anthropic`): the top level of the
body and the conversation's turns; content parts are in `to_anthropic_content`, tools and structured
output in `to_anthropic_tools`.

| OpenAI chat                               | Anthropic Messages                                         |
|-------------------------------------------|------------------------------------------------------------|
| system / developer messages (anywhere)    | `system` text blocks (a late one is moved up, with a note) |
| user / assistant text, text parts         | text blocks; consecutive turns of one role are merged      |
| `cache_control` on a text part (LiteLLM)  | kept on the block                                          |
| image_url part (data: URL or http(s))     | image block (base64 or url source); `detail` dropped       |
| input_audio / file parts                  | TranslationError                                           |
| assistant `tool_calls`                    | `tool_use` blocks (arguments must be a JSON object)        |
| `role="tool"` messages                    | `tool_result` blocks of one user turn (placed first)       |
| max_completion_tokens / max_tokens / none | `max_tokens` (none given: `default_max_tokens`, 4096)      |
| temperature (0–2)                         | temperature, clamped to Anthropic's 0–1 (with a note)      |
| top_p; stop (str or list)                 | top_p; stop_sequences                                      |
| stream; stream_options                    | stream; include_usage is honoured by the stream translator |
| function tools; strict                    | `{name, description, input_schema}`; strict dropped        |
| tool_choice auto/none/required/named      | auto / none / any / `{"type": "tool", "name"}`             |
| parallel_tool_calls=false                 | tool_choice.disable_parallel_tool_use                      |
| response_format json_schema / json_object | a forced tool call whose input is the answer (see tools)   |
| user / safety_identifier                  | metadata.user_id                                           |
| n > 1, custom tools, allowed_tools,       | TranslationError                                           |
| functions / function_call, audio output   |                                                            |
| anything else (seed, logprobs, penalties) | dropped, listed in `Translated.dropped`                    |

Structured output becomes a forced tool call (see `to_anthropic_tools`). A trailing assistant
message is a *prefill* on Anthropic (the model continues it) but history on OpenAI (the model
answers anew): translated as is, with a note.
"""

from __future__ import annotations

from typing import Any

from llmguard.providers.translate.common import TO_ANTHROPIC, Log, Translated, TranslationError
from llmguard.providers.translate.shapes import (
    drop_extra,
    expect_dict,
    expect_list,
    expect_number,
    expect_positive_int,
    expect_stops,
    expect_str,
    is_blank,
    kind_of,
    malformed,
)
from llmguard.providers.translate.to_anthropic_content import (
    MESSAGE_KEYS,
    assistant_blocks,
    compact_blocks,
    text_blocks,
    tool_result_block,
    user_blocks,
    with_cache_control,
)
from llmguard.providers.translate.to_anthropic_tools import translate_tools

DEFAULT_MAX_TOKENS = 4096
ANTHROPIC_MAX_TEMPERATURE = 1.0

_OPENAI_REFUSED = {  # field → (what, fix)
    "functions": ("the deprecated `functions` parameter", "define the functions as `tools` instead"),
    "function_call": ("the deprecated `function_call` parameter", "use `tools` and `tool_choice` instead"),
    "audio": ("audio output", "use a fallback of the same provider for audio calls"),
}
_OPENAI_HANDLED = (
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "n",
    "response_format",
    "user",
    "safety_identifier",
)


def openai_chat_to_anthropic(
    body: dict[str, Any], model: str, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> Translated:
    """An OpenAI `/v1/chat/completions` body as an Anthropic `/v1/messages` body for `model`.
    `default_max_tokens` is the bound sent when the request gives none (Anthropic requires one)."""
    body = expect_dict(body, "the request body")
    log = Log()
    _refuse_unsupported(body)
    system, messages = _openai_messages(expect_list(body.get("messages"), "messages"), log)
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens, log)}
    out["messages"] = messages
    if system:
        out["system"] = compact_blocks(system)
    _sampling(body, out, log)
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise malformed("stream", "a boolean", body["stream"])
        if body["stream"]:
            out["stream"] = True
    user = body.get("user") if body.get("user") is not None else body.get("safety_identifier")
    if user is not None:
        out["metadata"] = {"user_id": expect_str(user, "user")}
    json_tool = translate_tools(body, out, log)
    for key, value in body.items():
        if key not in _OPENAI_HANDLED and value is not None and value is not False:
            log.drop(key)
    return Translated(out, log.dropped, log.notes, json_tool)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    """Raise for what Anthropic cannot do at all: several answers, deprecated functions, audio out."""
    n = body.get("n")
    if n is not None and n != 1:
        several = isinstance(n, int) and not isinstance(n, bool) and n > 1
        raise TranslationError(
            f"{TO_ANTHROPIC}: n={kind_of(n)} asks for several answers in one call, which Anthropic cannot give",
            f"use a fallback of the same provider for n>1 calls, or make {n} separate calls with n=1"
            if several
            else "send n=1",
            "n",
        )
    for key, (what, fix) in _OPENAI_REFUSED.items():
        if body.get(key) is not None:
            raise TranslationError(f"{TO_ANTHROPIC}: {what}", fix, key)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise TranslationError(
            f"{TO_ANTHROPIC}: audio output (modalities)",
            "use a fallback of the same provider for audio calls",
        )


def _max_tokens(body: dict[str, Any], default_max_tokens: int, log: Log) -> int:
    """The output bound: max_completion_tokens, else max_tokens, else the default (Anthropic needs one)."""
    bound = body.get("max_completion_tokens")
    if bound is not None:
        bound = expect_positive_int(bound, "max_completion_tokens")
        if body.get("max_tokens") is not None:
            log.drop("max_tokens", "max_tokens was dropped: max_completion_tokens takes precedence")
        return bound
    if body.get("max_tokens") is not None:
        return expect_positive_int(body["max_tokens"], "max_tokens")
    log.note(f"no max_tokens was given; Anthropic requires one, so {default_max_tokens} was sent")
    return default_max_tokens


def _sampling(body: dict[str, Any], out: dict[str, Any], log: Log) -> None:
    """temperature (clamped to Anthropic's range), top_p and stop sequences (blank ones dropped)."""
    temperature = body.get("temperature")
    if temperature is not None:
        value = expect_number(temperature, "temperature")
        if value > ANTHROPIC_MAX_TEMPERATURE:
            log.note(f"temperature {value} was clamped to {ANTHROPIC_MAX_TEMPERATURE}, Anthropic's maximum")
            value = ANTHROPIC_MAX_TEMPERATURE
        out["temperature"] = value
    if body.get("top_p") is not None:
        out["top_p"] = expect_number(body["top_p"], "top_p")
    if body.get("stop") is not None:
        stops = []
        for i, stop in enumerate(expect_stops(body["stop"], "stop")):
            if is_blank(stop):
                log.drop(f"stop[{i}]", "blank stop sequences were dropped: Anthropic refuses whitespace-only ones")
            else:
                stops.append(stop)
        if stops:
            out["stop_sequences"] = stops


def _openai_messages(messages: list[Any], log: Log) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, merged Anthropic turns) of OpenAI chat messages."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    began = False
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = expect_dict(raw, where, "a message object")
        role = message.get("role")
        if message.get("name") is not None:
            log.note("message names were dropped: Anthropic messages carry no participant names")
        if role in ("system", "developer"):
            drop_extra(message, MESSAGE_KEYS, where, log)
            if began:
                log.note(f"{where}: a {role} message inside the conversation was moved into Anthropic's system prompt")
            blocks = text_blocks(message.get("content"), f"{where}.content", log, f"a {role} message")
            system += with_cache_control(blocks, message, where)
            continue
        turn_role, blocks = _turn(message, role, where, log)
        began = True
        blocks = with_cache_control(blocks, message, where)
        if not blocks:
            log.drop(where, "empty messages were left out: Anthropic refuses empty content")
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": turn_role, "content": blocks})
    _finish_turns(turns, log)
    return system, turns


def _turn(message: dict[str, Any], role: Any, where: str, log: Log) -> tuple[str, list[dict[str, Any]]]:
    """(the Anthropic role, the blocks) of one user, assistant or tool message."""
    if role == "user":
        drop_extra(message, MESSAGE_KEYS, where, log)
        return "user", user_blocks(message.get("content"), f"{where}.content", log)
    if role == "assistant":
        return "assistant", assistant_blocks(message, where, log)
    if role == "tool":
        drop_extra(message, (*MESSAGE_KEYS, "tool_call_id"), where, log)
        return "user", [tool_result_block(message, where, log)]
    if role == "function":
        raise TranslationError(
            f"{TO_ANTHROPIC}: {where} has the deprecated role 'function'",
            "send tool results as role 'tool' messages with a tool_call_id",
            where,
        )
    raise malformed(f"{where}.role", "'system', 'developer', 'user', 'assistant' or 'tool'", role)


def _finish_turns(turns: list[dict[str, Any]], log: Log) -> None:
    """Make merged turns acceptable to Anthropic: tool results first, no trailing blank prefill."""
    if not turns:
        raise TranslationError(
            f"{TO_ANTHROPIC}: it has no user or assistant message",
            "Anthropic needs at least one user message: put the request in a user message",
            "messages",
        )
    for turn in turns:
        if turn["role"] == "user":  # Anthropic wants a turn's tool results ahead of its other blocks
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    last = turns[-1]
    if last["role"] == "assistant":
        log.note(
            "the conversation ends with an assistant message: Anthropic continues it (a prefill) "
            "where OpenAI answers a new turn"
        )
        tail = last["content"][-1]
        if tail["type"] == "text":  # Anthropic refuses a final assistant text ending in whitespace
            tail["text"] = tail["text"].rstrip()
            if not tail["text"]:
                last["content"].pop()
                if not last["content"]:
                    turns.pop()
        if not turns:
            raise TranslationError(
                f"{TO_ANTHROPIC}: it has no user or assistant message with content",
                "Anthropic needs at least one user message: put the request in a user message",
                "messages",
            )
    for turn in turns:
        turn["content"] = compact_blocks(turn["content"])
