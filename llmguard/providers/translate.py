"""OpenAI chat ⇄ Anthropic Messages translation, so a fallback chain may cross providers.

A chain such as `fallbacks={"gpt-4o-mini": ["claude-3-5-haiku-latest"]}` sends the caller's OpenAI
chat request to Anthropic and hands the answer back in the shape the caller's SDK expects (what
LiteLLM users expect). Pure functions on dicts and bytes, plus two small stateful stream
translators; no I/O, nothing from the guard.

Requests, OpenAI chat → Anthropic Messages (`openai_chat_to_anthropic`):

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
| response_format json_schema / json_object | a forced tool call whose input is the answer (see below)   |
| user / safety_identifier                  | metadata.user_id                                           |
| n > 1, custom tools, allowed_tools,       | TranslationError                                           |
| functions / function_call, audio output   |                                                            |
| anything else (seed, logprobs, penalties) | dropped, listed in `Translated.dropped`                    |

*Structured output* has no Anthropic request field the simulator and all models share, so it is
approximated the way LiteLLM does it: one tool whose `input_schema` is the schema (named after it;
`json_answer` for json_object), forced by `tool_choice`. `Translated.json_tool` names that tool; pass
it to the response translators and its input comes back as the message content (JSON text) with
finish_reason `stop`. The schema's root must be an object, and the request may have no tools of its
own. A trailing assistant message is a *prefill* on Anthropic (the model continues it) but history
on OpenAI (the model answers anew): translated as is, with a note.

Requests, Anthropic Messages → OpenAI chat (`anthropic_to_openai_chat`): `system` → a system
message; text and image blocks → content parts; `tool_use` → `tool_calls` (JSON-text arguments);
`tool_result` blocks → `role="tool"` messages ahead of the turn's other parts (text only: images
raise); `thinking` / `redacted_thinking` blocks and the `thinking` parameter → dropped with a note;
`cache_control` → dropped (OpenAI caches prefixes by itself); `max_tokens` → `max_completion_tokens`;
`stop_sequences` → `stop` (more than 4 raise: OpenAI takes 4); `top_k` → dropped; tool_choice
any/tool → required/named; `disable_parallel_tool_use` → `parallel_tool_calls=false`; server tools,
documents, search results → TranslationError; `stream` also asks for usage (`include_usage`).

Responses: `anthropic_message_to_openai_chat_completion` and its reverse (finish reasons
end_turn/stop_sequence/pause_turn ↔ stop, max_tokens ↔ length, tool_use ↔ tool_calls, refusal ↔
content_filter; usage: prompt_tokens = input + cache read + cache write, cached_tokens = cache read,
cache_write_tokens = cache write), `AnthropicToOpenAIStream` / `OpenAIToAnthropicStream` for SSE,
and `anthropic_error_to_openai` / `openai_error_to_anthropic` for error bodies (message kept).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from llmguard.intercept.sse import SSESplitter, event_fields

DEFAULT_MAX_TOKENS = 4096
OPENAI_MAX_STOP = 4  # OpenAI takes at most 4 stop sequences
ANTHROPIC_MAX_TEMPERATURE = 1.0
JSON_OBJECT_TOOL = "json_answer"  # the forced tool standing for response_format json_object
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_ANY_OBJECT = {"type": "object", "properties": {}}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# An answer's tool input as text, spaced the way Anthropic streams it (so a streamed answer and the
# JSON one read the same)
_spaced = json.JSONEncoder(ensure_ascii=False).encode

FINISH_REASON = {  # Anthropic stop_reason → OpenAI finish_reason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASON = {  # OpenAI finish_reason → Anthropic stop_reason
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_SAME_PROVIDER = "use a fallback of the same provider for such calls"


class TranslationError(ValueError):
    """A request (or answer) the other provider's format cannot express. The message says what and
    what to do; `where` is the offending field."""

    def __init__(self, what: str, fix: str, where: str | None = None) -> None:
        self.what, self.fix, self.where = what, fix, where
        super().__init__(f"llmguard: cannot translate {what}. {fix[:1].upper()}{fix[1:]}.")


@dataclass(frozen=True, slots=True)
class Translated:
    """A translated request body. `dropped` lists the fields (paths) left out because the other
    format has no place for them; `notes` say in words what was approximated or dropped and why.
    `json_tool` names the forced tool standing for OpenAI structured output (pass it on to the
    response translators)."""

    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    json_tool: str | None = None


class _Log:
    __slots__ = ("dropped", "notes")

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.notes: list[str] = []

    def drop(self, where: str, note: str | None = None) -> None:
        self.dropped.append(where)
        if note:
            self.note(note)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


# -- shape checks -----------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return type(value).__name__


def _malformed(where: str, expected: str, value: Any) -> TranslationError:
    return TranslationError(
        f"{where}: expected {expected}, got {_kind(value)}",
        "fix the request: the provider would refuse it as well",
        where,
    )


def _dict(value: Any, where: str, expected: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(where, expected, value)
    return value


def _list(value: Any, where: str, expected: str = "a list") -> list[Any]:
    if not isinstance(value, list):
        raise _malformed(where, expected, value)
    return value


def _str(value: Any, where: str, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise _malformed(where, expected, value)
    return value


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _malformed(where, "a positive integer", value)
    return value


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _malformed(where, "a number", value)
    return value


def _stops(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [_str(s, f"{where}[{i}]") for i, s in enumerate(_list(value, where, "a string or a list"))]


def _drop_extra(item: dict[str, Any], keep: tuple[str, ...], where: str, log: _Log, note: str | None = None) -> None:
    for key, value in item.items():
        if key not in keep and value is not None:
            log.drop(f"{where}.{key}", note)


def _is_blank(text: str) -> bool:
    return not text.strip()


# -- requests: OpenAI chat → Anthropic Messages -------------------------------------------------------

_TO_ANTHROPIC = "this OpenAI chat request for Anthropic Messages"
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
    body = _dict(body, "the request body")
    log = _Log()
    n = body.get("n")
    if n is not None and n != 1:
        several = isinstance(n, int) and not isinstance(n, bool) and n > 1
        raise TranslationError(
            f"{_TO_ANTHROPIC}: n={_kind(n)} asks for several answers in one call, which Anthropic cannot give",
            f"use a fallback of the same provider for n>1 calls, or make {n} separate calls with n=1"
            if several
            else "send n=1",
            "n",
        )
    for key, (what, fix) in _OPENAI_REFUSED.items():
        if body.get(key) is not None:
            raise TranslationError(f"{_TO_ANTHROPIC}: {what}", fix, key)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise TranslationError(
            f"{_TO_ANTHROPIC}: audio output (modalities)",
            "use a fallback of the same provider for audio calls",
        )

    system, messages = _openai_messages(_list(body.get("messages"), "messages"), log)
    out: dict[str, Any] = {"model": model}
    bound = body.get("max_completion_tokens")
    if bound is not None:
        out["max_tokens"] = _positive_int(bound, "max_completion_tokens")
        if body.get("max_tokens") is not None:
            log.drop("max_tokens", "max_tokens was dropped: max_completion_tokens takes precedence")
    elif body.get("max_tokens") is not None:
        out["max_tokens"] = _positive_int(body["max_tokens"], "max_tokens")
    else:
        out["max_tokens"] = default_max_tokens
        log.note(f"no max_tokens was given; Anthropic requires one, so {default_max_tokens} was sent")
    out["messages"] = messages
    if system:
        out["system"] = _compact(system)
    temperature = body.get("temperature")
    if temperature is not None:
        value = _number(temperature, "temperature")
        if value > ANTHROPIC_MAX_TEMPERATURE:
            log.note(f"temperature {value} was clamped to {ANTHROPIC_MAX_TEMPERATURE}, Anthropic's maximum")
            value = ANTHROPIC_MAX_TEMPERATURE
        out["temperature"] = value
    if body.get("top_p") is not None:
        out["top_p"] = _number(body["top_p"], "top_p")
    if body.get("stop") is not None:
        stops = []
        for i, stop in enumerate(_stops(body["stop"], "stop")):
            if _is_blank(stop):
                log.drop(f"stop[{i}]", "blank stop sequences were dropped: Anthropic refuses whitespace-only ones")
            else:
                stops.append(stop)
        if stops:
            out["stop_sequences"] = stops
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise _malformed("stream", "a boolean", body["stream"])
        if body["stream"]:
            out["stream"] = True
    user = body.get("user") if body.get("user") is not None else body.get("safety_identifier")
    if user is not None:
        out["metadata"] = {"user_id": _str(user, "user")}
    json_tool = _openai_tools(body, out, log)
    for key, value in body.items():
        if key not in _OPENAI_HANDLED and value is not None and value is not False:
            log.drop(key)
    return Translated(out, log.dropped, log.notes, json_tool)


def _openai_messages(messages: list[Any], log: _Log) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, merged Anthropic turns) of OpenAI chat messages."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    began = False
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = _dict(raw, where, "a message object")
        role = message.get("role")
        if message.get("name") is not None:
            log.note("message names were dropped: Anthropic messages carry no participant names")
        if role in ("system", "developer"):
            _drop_extra(message, _MESSAGE_KEYS, where, log)
            if began:
                log.note(f"{where}: a {role} message inside the conversation was moved into Anthropic's system prompt")
            blocks = _openai_text_blocks(message.get("content"), f"{where}.content", log, f"a {role} message")
            system += _cached(blocks, message, where)
            continue
        if role == "user":
            _drop_extra(message, _MESSAGE_KEYS, where, log)
            blocks = _openai_user_blocks(message.get("content"), f"{where}.content", log)
            turn_role = "user"
        elif role == "assistant":
            blocks = _openai_assistant_blocks(message, where, log)
            turn_role = "assistant"
        elif role == "tool":
            _drop_extra(message, (*_MESSAGE_KEYS, "tool_call_id"), where, log)
            blocks = [_openai_tool_result(message, where, log)]
            turn_role = "user"
        elif role == "function":
            raise TranslationError(
                f"{_TO_ANTHROPIC}: {where} has the deprecated role 'function'",
                "send tool results as role 'tool' messages with a tool_call_id",
                where,
            )
        else:
            raise _malformed(f"{where}.role", "'system', 'developer', 'user', 'assistant' or 'tool'", role)
        began = True
        blocks = _cached(blocks, message, where)
        if not blocks:
            log.drop(where, "empty messages were left out: Anthropic refuses empty content")
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": turn_role, "content": blocks})
    if not turns:
        raise TranslationError(
            f"{_TO_ANTHROPIC}: it has no user or assistant message",
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
                f"{_TO_ANTHROPIC}: it has no user or assistant message with content",
                "Anthropic needs at least one user message: put the request in a user message",
                "messages",
            )
    for turn in turns:
        turn["content"] = _compact(turn["content"])
    return system, turns


_MESSAGE_KEYS = ("role", "content", "cache_control")


def _cached(blocks: list[dict[str, Any]], message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A message-level `cache_control` (LiteLLM's form for string content) put on its last block."""
    control = message.get("cache_control")
    if control is not None and blocks:
        blocks[-1]["cache_control"] = _dict(control, f"{where}.cache_control")
    return blocks


def _openai_tool_result(message: dict[str, Any], where: str, log: _Log) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": _str(message.get("tool_call_id"), f"{where}.tool_call_id"),
    }
    content = message.get("content")
    if isinstance(content, str):
        if content:
            result["content"] = content
    else:
        blocks = _openai_text_blocks(content, f"{where}.content", log, "a tool message")
        if blocks:
            result["content"] = _compact(blocks)
    return result


def _compact(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text block as a string (the natural form); anything else as blocks."""
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"} and blocks[0]["type"] == "text":
        return str(blocks[0]["text"])
    return blocks


def _text_block(part: dict[str, Any], where: str, log: _Log) -> dict[str, Any] | None:
    text = _str(part.get("text"), f"{where}.text")
    if _is_blank(text):
        log.drop(where, "blank text parts were left out: Anthropic refuses empty text blocks")
        return None
    block: dict[str, Any] = {"type": "text", "text": text}
    control = part.get("cache_control")
    if control is not None:
        block["cache_control"] = _dict(control, f"{where}.cache_control")
    _drop_extra(part, ("type", "text", "cache_control"), where, log)
    return block


def _openai_text_blocks(content: Any, where: str, log: _Log, what: str) -> list[dict[str, Any]]:
    """Text-only content (system, developer, tool messages) as Anthropic text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [] if _is_blank(content) else [{"type": "text", "text": content}]
    blocks = []
    for j, raw in enumerate(_list(content, where, "a string or a list of content parts")):
        part = _dict(raw, f"{where}[{j}]", "a content part")
        if part.get("type") != "text":
            raise TranslationError(
                f"{_TO_ANTHROPIC}: {where}[{j}] is a {part.get('type')!r} part in {what}",
                "Anthropic takes text only there: send text parts",
                f"{where}[{j}]",
            )
        block = _text_block(part, f"{where}[{j}]", log)
        if block is not None:
            blocks.append(block)
    return blocks


def _openai_user_blocks(content: Any, where: str, log: _Log) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if _is_blank(content):
            return []
        return [{"type": "text", "text": content}]
    blocks = []
    for j, raw in enumerate(_list(content, where, "a string or a list of content parts")):
        at = f"{where}[{j}]"
        part = _dict(raw, at, "a content part")
        kind = part.get("type")
        if kind == "text":
            block = _text_block(part, at, log)
            if block is not None:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(_openai_image(part, at, log))
        elif kind in ("input_audio", "file"):
            raise TranslationError(
                f"{_TO_ANTHROPIC}: {at} is an {kind!r} part",
                "Anthropic Messages take text and images: use a fallback of the same provider for audio "
                "and file inputs",
                at,
            )
        else:
            raise _malformed(f"{at}.type", "'text', 'image_url', 'input_audio' or 'file'", kind)
    return blocks


def _openai_image(part: dict[str, Any], where: str, log: _Log) -> dict[str, Any]:
    spec = _dict(part.get("image_url"), f"{where}.image_url")
    url = _str(spec.get("url"), f"{where}.image_url.url")
    _drop_extra(spec, ("url",), f"{where}.image_url", log, "image detail levels have no Anthropic equivalent")
    found = _DATA_URL.fullmatch(url)
    if found:
        media_type, data = found.group(1).lower(), found.group(2)
        if media_type not in _IMAGE_TYPES:
            raise TranslationError(
                f"{_TO_ANTHROPIC}: {where} is a {media_type} image",
                f"Anthropic takes {', '.join(_IMAGE_TYPES)}: convert the image first",
                where,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(
        f"{_TO_ANTHROPIC}: {where} has an image URL that is neither https:// nor a base64 data: URL",
        "send the image as a base64 data: URL",
        where,
    )


def _openai_assistant_blocks(message: dict[str, Any], where: str, log: _Log) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise TranslationError(
            f"{_TO_ANTHROPIC}: {where} has a deprecated function_call",
            "record tool calls as tool_calls with ids",
            f"{where}.function_call",
        )
    _drop_extra(message, (*_MESSAGE_KEYS, "tool_calls", "refusal", "function_call"), where, log)
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if not _is_blank(content):
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        for j, raw in enumerate(_list(content, f"{where}.content", "a string or a list of content parts")):
            at = f"{where}.content[{j}]"
            part = _dict(raw, at, "a content part")
            kind = part.get("type")
            if kind == "refusal":
                text = _str(part.get("refusal"), f"{at}.refusal")
                if not _is_blank(text):
                    blocks.append({"type": "text", "text": text})
            elif kind == "text":
                block = _text_block(part, at, log)
                if block is not None:
                    blocks.append(block)
            else:
                raise _malformed(f"{at}.type", "'text' or 'refusal'", kind)
    refusal = message.get("refusal")
    if refusal is not None and not _is_blank(_str(refusal, f"{where}.refusal")):
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    if calls is not None:
        for j, raw in enumerate(_list(calls, f"{where}.tool_calls")):
            blocks.append(_openai_tool_call(_dict(raw, f"{where}.tool_calls[{j}]"), f"{where}.tool_calls[{j}]"))
    return blocks


def _openai_tool_call(call: dict[str, Any], where: str) -> dict[str, Any]:
    if call.get("type", "function") != "function":
        raise TranslationError(
            f"{_TO_ANTHROPIC}: {where} is a {call.get('type')!r} tool call",
            f"Anthropic has function tools only; {_SAME_PROVIDER}",
            where,
        )
    function = _dict(call.get("function"), f"{where}.function")
    name = _str(function.get("name"), f"{where}.function.name")
    arguments = function.get("arguments")
    arguments = "" if arguments is None else _str(arguments, f"{where}.function.arguments")
    value: Any = {}
    if arguments.strip():
        try:
            value = json.loads(arguments)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise TranslationError(
            f"{_TO_ANTHROPIC}: the arguments of {where} are not a JSON object",
            "Anthropic tool inputs are objects: repair the call's arguments or leave the call out of the history",
            f"{where}.function.arguments",
        )
    return {"type": "tool_use", "id": _str(call.get("id"), f"{where}.id"), "name": name, "input": value}


def _openai_tools(body: dict[str, Any], out: dict[str, Any], log: _Log) -> str | None:
    """Fill `out` with tools and tool_choice; the forced tool's name for structured output, or None."""
    tools: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(body.get("tools") or [], "tools")):
        where = f"tools[{i}]"
        tool = _dict(raw, where, "a tool object")
        if tool.get("type") != "function":
            raise TranslationError(
                f"{_TO_ANTHROPIC}: {where} is a {tool.get('type')!r} tool",
                f"Anthropic has function tools only; {_SAME_PROVIDER}",
                where,
            )
        function = _dict(tool.get("function"), f"{where}.function")
        spec: dict[str, Any] = {"name": _str(function.get("name"), f"{where}.function.name")}
        if function.get("description") is not None:
            spec["description"] = _str(function["description"], f"{where}.function.description")
        parameters = function.get("parameters")
        spec["input_schema"] = (
            dict(_ANY_OBJECT) if parameters is None else _dict(parameters, f"{where}.function.parameters")
        )
        _drop_extra(
            function,
            ("name", "description", "parameters"),
            f"{where}.function",
            log,
            "strict function schemas have no Anthropic equivalent: the model is asked, not forced, to match",
        )
        tools.append(spec)
    choice = body.get("tool_choice")
    json_tool = _openai_response_format(body.get("response_format"), bool(tools), out, log)
    if json_tool is not None:
        if choice is not None:
            log.drop("tool_choice")
        if body.get("parallel_tool_calls") is not None:
            log.drop("parallel_tool_calls")
        return json_tool
    if tools:
        out["tools"] = tools
    anthropic_choice: dict[str, Any] | None = None
    if choice is not None:
        anthropic_choice = _openai_tool_choice(choice)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise _malformed("parallel_tool_calls", "a boolean", parallel)
    if parallel is False:
        if not tools:
            log.drop("parallel_tool_calls")
        elif anthropic_choice is None or anthropic_choice["type"] != "none":
            anthropic_choice = {**(anthropic_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if anthropic_choice is not None:
        out["tool_choice"] = anthropic_choice
    return None


def _openai_tool_choice(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = _dict(choice.get("function"), "tool_choice.function")
        return {"type": "tool", "name": _str(function.get("name"), "tool_choice.function.name")}
    if isinstance(choice, dict) and choice.get("type") in ("allowed_tools", "custom"):
        raise TranslationError(
            f"{_TO_ANTHROPIC}: tool_choice of type {choice['type']!r}",
            "Anthropic has auto, any, none or one named tool: send only the allowed tools with "
            "tool_choice 'auto' or 'required'",
            "tool_choice",
        )
    raise _malformed("tool_choice", "'auto', 'none', 'required' or a named function", choice)


def _openai_response_format(raw: Any, has_tools: bool, out: dict[str, Any], log: _Log) -> str | None:
    if raw is None:
        return None
    spec = _dict(raw, "response_format")
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        raise _malformed("response_format.type", "'text', 'json_object' or 'json_schema'", kind)
    if has_tools:
        raise TranslationError(
            f"{_TO_ANTHROPIC}: response_format {kind} together with tools",
            "structured output is approximated by forcing one tool call, which leaves the request's own "
            f"tools unusable: {_SAME_PROVIDER}, or drop the response_format",
            "response_format",
        )
    if kind == "json_object":
        name, schema, description = JSON_OBJECT_TOOL, {"type": "object"}, "Give the answer as a JSON object."
    else:
        schema_spec = _dict(spec.get("json_schema"), "response_format.json_schema")
        name = _str(schema_spec.get("name"), "response_format.json_schema.name")
        schema = _dict(schema_spec.get("schema", {"type": "object"}), "response_format.json_schema.schema")
        description = schema_spec.get("description") or "Give the answer in this shape."
        _str(description, "response_format.json_schema.description")
        _drop_extra(schema_spec, ("name", "schema", "description"), "response_format.json_schema", log)
        if schema.get("type") != "object":
            raise TranslationError(
                f"{_TO_ANTHROPIC}: response_format json_schema whose root is not an object "
                f"(type {schema.get('type')!r})",
                "Anthropic tool inputs are objects: wrap the schema in an object property",
                "response_format.json_schema.schema",
            )
    out["tools"] = [{"name": name, "description": description, "input_schema": schema}]
    out["tool_choice"] = {"type": "tool", "name": name}
    log.note(
        f"response_format {kind} is approximated by a forced tool call {name!r}; "
        "its input comes back as the message content"
    )
    return name


# -- requests: Anthropic Messages → OpenAI chat -------------------------------------------------------

_TO_OPENAI = "this Anthropic Messages request for OpenAI chat"
_ANTHROPIC_HANDLED = (
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
)
_CACHE_NOTE = "cache_control was dropped: OpenAI caches prompt prefixes by itself"
_THINKING_NOTE = "thinking has no OpenAI chat equivalent: thinking blocks and the thinking parameter were dropped"


def anthropic_to_openai_chat(body: dict[str, Any], model: str) -> Translated:
    """An Anthropic `/v1/messages` body as an OpenAI `/v1/chat/completions` body for `model`."""
    body = _dict(body, "the request body")
    log = _Log()
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        parts = _anthropic_text_parts(system, "system", log, "the system prompt")
        if parts:
            messages.append({"role": "system", "content": _openai_compact(parts)})
    messages += _anthropic_messages(_list(body.get("messages"), "messages"), log)
    out: dict[str, Any] = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = _positive_int(body["max_tokens"], "max_tokens")
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = _number(body[key], key)
    if body.get("stop_sequences") is not None:
        stops = _stops(body["stop_sequences"], "stop_sequences")
        if len(stops) > OPENAI_MAX_STOP:
            raise TranslationError(
                f"{_TO_OPENAI}: {len(stops)} stop_sequences",
                f"OpenAI takes at most {OPENAI_MAX_STOP}: send {OPENAI_MAX_STOP} or fewer, or {_SAME_PROVIDER}",
                "stop_sequences",
            )
        if stops:
            out["stop"] = stops
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _malformed("stream", "a boolean", stream)
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # message_delta needs the usage
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = _dict(metadata, "metadata")
        if metadata.get("user_id") is not None:
            out["user"] = _str(metadata["user_id"], "metadata.user_id")
        _drop_extra(metadata, ("user_id",), "metadata", log)
    _anthropic_tools(body, out, log)
    for key, value in body.items():
        if key not in _ANTHROPIC_HANDLED and value is not None:
            log.drop(key, _THINKING_NOTE if key == "thinking" else None)
    return Translated(out, log.dropped, log.notes)


def _openai_compact(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _anthropic_text_parts(content: Any, where: str, log: _Log, what: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    parts = []
    for j, raw in enumerate(_list(content, where, "a string or a list of content blocks")):
        at = f"{where}[{j}]"
        block = _dict(raw, at, "a content block")
        if block.get("type") != "text":
            raise TranslationError(
                f"{_TO_OPENAI}: {at} is a {block.get('type')!r} block in {what}",
                "OpenAI takes text only there: send text blocks",
                at,
            )
        parts.append(_anthropic_text(block, at, log))
    return parts


def _anthropic_text(block: dict[str, Any], where: str, log: _Log) -> dict[str, Any]:
    text = _str(block.get("text"), f"{where}.text")
    if block.get("cache_control") is not None:
        log.drop(f"{where}.cache_control", _CACHE_NOTE)
    _drop_extra(block, ("type", "text", "cache_control"), where, log)
    return {"type": "text", "text": text}


def _anthropic_messages(messages: list[Any], log: _Log) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = _dict(raw, where, "a message object")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _malformed(f"{where}.role", "'user' or 'assistant'", role)
        _drop_extra(message, ("role", "content"), where, log)
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        blocks = _list(content, f"{where}.content", "a string or a list of content blocks")
        if role == "user":
            out += _anthropic_user(blocks, f"{where}.content", log)
        else:
            out.append(_anthropic_assistant(blocks, f"{where}.content", log))
    if out and out[-1]["role"] == "assistant":
        log.note(
            "the conversation ends with an assistant message: Anthropic would continue it (a prefill); "
            "OpenAI answers a new turn instead"
        )
    return out


def _anthropic_user(blocks: list[Any], where: str, log: _Log) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, raw in enumerate(blocks):
        at = f"{where}[{j}]"
        block = _dict(raw, at, "a content block")
        kind = block.get("type")
        if kind == "text":
            parts.append(_anthropic_text(block, at, log))
        elif kind == "image":
            parts.append(_anthropic_image(block, at, log))
        elif kind == "tool_result":
            results.append(_anthropic_tool_result(block, at, log))
        elif kind in ("document", "search_result", "container_upload"):
            raise TranslationError(
                f"{_TO_OPENAI}: {at} is a {kind!r} block",
                f"OpenAI chat has no such input: {_SAME_PROVIDER}, or send the text itself",
                at,
            )
        else:
            raise _malformed(f"{at}.type", "'text', 'image' or 'tool_result'", kind)
    out = results
    if parts:
        out.append({"role": "user", "content": _openai_compact(parts)})
    elif not results:
        log.drop(where, "empty messages were left out")
    return out


def _anthropic_image(block: dict[str, Any], where: str, log: _Log) -> dict[str, Any]:
    source = _dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if block.get("cache_control") is not None:
        log.drop(f"{where}.cache_control", _CACHE_NOTE)
    if kind == "base64":
        media_type = _str(source.get("media_type"), f"{where}.source.media_type")
        url = f"data:{media_type};base64,{_str(source.get('data'), f'{where}.source.data')}"
    elif kind == "url":
        url = _str(source.get("url"), f"{where}.source.url")
    else:
        raise TranslationError(
            f"{_TO_OPENAI}: {where} has an image source of type {kind!r}",
            "OpenAI takes images as URLs or base64 data: send the image as base64",
            where,
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _anthropic_tool_result(block: dict[str, Any], where: str, log: _Log) -> dict[str, Any]:
    call_id = _str(block.get("tool_use_id"), f"{where}.tool_use_id")
    content = block.get("content")
    if block.get("is_error") is not None:
        log.drop(f"{where}.is_error", "tool_result is_error has no OpenAI equivalent: say so in the content")
    if block.get("cache_control") is not None:
        log.drop(f"{where}.cache_control", _CACHE_NOTE)
    text: str | list[dict[str, Any]]
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        parts = []
        for k, raw in enumerate(_list(content, f"{where}.content", "a string or a list of content blocks")):
            at = f"{where}.content[{k}]"
            part = _dict(raw, at, "a content block")
            if part.get("type") != "text":
                raise TranslationError(
                    f"{_TO_OPENAI}: {at} is a {part.get('type')!r} block inside a tool_result",
                    "OpenAI tool messages hold text only: describe the result in text",
                    at,
                )
            parts.append(_anthropic_text(part, at, log))
        text = _openai_compact(parts) if parts else ""
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _anthropic_assistant(blocks: list[Any], where: str, log: _Log) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, raw in enumerate(blocks):
        at = f"{where}[{j}]"
        block = _dict(raw, at, "a content block")
        kind = block.get("type")
        if kind == "text":
            texts.append(_anthropic_text(block, at, log)["text"])
        elif kind in ("thinking", "redacted_thinking"):
            log.drop(at, _THINKING_NOTE)
        elif kind == "tool_use":
            value = _dict(block.get("input"), f"{at}.input")
            calls.append(
                {
                    "id": _str(block.get("id"), f"{at}.id"),
                    "type": "function",
                    "function": {"name": _str(block.get("name"), f"{at}.name"), "arguments": _dumps(value)},
                }
            )
            if block.get("cache_control") is not None:
                log.drop(f"{at}.cache_control", _CACHE_NOTE)
        elif kind in ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result") or (
            isinstance(kind, str) and kind.endswith("_tool_result")
        ):
            raise TranslationError(
                f"{_TO_OPENAI}: {at} is a {kind!r} block (an Anthropic server tool)",
                f"OpenAI chat cannot replay server tools: {_SAME_PROVIDER}",
                at,
            )
        else:
            raise _malformed(f"{at}.type", "'text', 'thinking', 'redacted_thinking' or 'tool_use'", kind)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _anthropic_tools(body: dict[str, Any], out: dict[str, Any], log: _Log) -> None:
    tools: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(body.get("tools") or [], "tools")):
        where = f"tools[{i}]"
        tool = _dict(raw, where, "a tool object")
        if tool.get("type") not in (None, "custom"):
            raise TranslationError(
                f"{_TO_OPENAI}: {where} is the Anthropic server tool {tool.get('type')!r}",
                f"OpenAI chat has function tools only: {_SAME_PROVIDER}, or define a custom tool",
                where,
            )
        function: dict[str, Any] = {"name": _str(tool.get("name"), f"{where}.name")}
        if tool.get("description") is not None:
            function["description"] = _str(tool["description"], f"{where}.description")
        function["parameters"] = _dict(tool.get("input_schema"), f"{where}.input_schema")
        if tool.get("cache_control") is not None:
            log.drop(f"{where}.cache_control", _CACHE_NOTE)
        _drop_extra(tool, ("type", "name", "description", "input_schema", "cache_control"), where, log)
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if choice is None:
        return
    choice = _dict(choice, "tool_choice")
    kind = choice.get("type")
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool":
        out["tool_choice"] = {
            "type": "function",
            "function": {"name": _str(choice.get("name"), "tool_choice.name")},
        }
    else:
        raise _malformed("tool_choice.type", "'auto', 'any', 'tool' or 'none'", kind)
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is True and tools and kind != "none":
        out["parallel_tool_calls"] = False
    _drop_extra(choice, ("type", "name", "disable_parallel_tool_use"), "tool_choice", log)


# -- usage ----------------------------------------------------------------------------------------------


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage_to_openai(usage: Any) -> dict[str, Any] | None:
    """Anthropic usage as OpenAI chat usage: prompt tokens include cache reads and writes."""
    if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
        return None
    read = _count(usage, "cache_read_input_tokens")
    write = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + read + write
    completion = _count(usage, "output_tokens")
    details = usage.get("output_tokens_details")
    thinking = _count(details, "thinking_tokens") if isinstance(details, dict) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }


def openai_usage_to_anthropic(usage: Any) -> dict[str, Any] | None:
    """OpenAI chat usage as Anthropic usage: input tokens exclude cache reads (and writes)."""
    if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
        return None
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read, write = _count(details, "cached_tokens"), _count(details, "cache_write_tokens")
    return {
        "input_tokens": max(0, _count(usage, "prompt_tokens") - read - write),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": _count(usage, "completion_tokens"),
    }


# -- responses ------------------------------------------------------------------------------------------

_ANSWER = "this answer"


def anthropic_message_to_openai_chat_completion(
    message: dict[str, Any], requested_model: str, json_tool: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """An Anthropic `message` as an OpenAI `chat.completion`. `model` is the model that answered
    (`requested_model` only when the message names none); `json_tool` is `Translated.json_tool`."""
    message = _dict(message, _ANSWER, "a message object")
    blocks = _list(message.get("content"), "content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answered_json = False
    for j, raw in enumerate(blocks):
        block = _dict(raw, f"content[{j}]", "a content block")
        kind = block.get("type")
        if kind == "text":
            texts.append(_str(block.get("text"), f"content[{j}].text"))
        elif kind == "tool_use":
            value = block.get("input")
            name = _str(block.get("name"), f"content[{j}].name")
            if json_tool is not None and name == json_tool:
                texts.append(_spaced(value if value is not None else {}))
                answered_json = True
            else:
                calls.append(
                    {
                        "id": _str(block.get("id"), f"content[{j}].id"),
                        "type": "function",
                        "function": {"name": name, "arguments": _spaced(value if value is not None else {})},
                    }
                )
        # thinking, redacted_thinking and server-tool blocks have no place in a chat.completion
    stop = message.get("stop_reason")
    finish = FINISH_REASON.get(stop, "stop") if isinstance(stop, str) else "stop"
    if answered_json and finish == "tool_calls" and not calls:
        finish = "stop"
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": _str(message.get("id"), "id"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": message.get("model") if isinstance(message.get("model"), str) else requested_model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": anthropic_usage_to_openai(message.get("usage")),
        "system_fingerprint": None,
    }


def openai_chat_completion_to_anthropic_message(completion: dict[str, Any], requested_model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` (one choice) as an Anthropic `message`."""
    completion = _dict(completion, _ANSWER, "a chat.completion object")
    choices = _list(completion.get("choices"), "choices")
    if len(choices) != 1:
        raise TranslationError(
            f"a chat.completion with {len(choices)} choices into an Anthropic message",
            "an Anthropic message holds one answer: ask for n=1",
            "choices",
        )
    choice = _dict(choices[0], "choices[0]")
    reply = _dict(choice.get("message"), "choices[0].message")
    content: list[dict[str, Any]] = []
    text = reply.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = reply.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for j, raw in enumerate(_list(reply.get("tool_calls") or [], "choices[0].message.tool_calls")):
        where = f"choices[0].message.tool_calls[{j}]"
        call = _dict(raw, where)
        function = _dict(call.get("function"), f"{where}.function")
        content.append(
            {
                "type": "tool_use",
                "id": _str(call.get("id"), f"{where}.id"),
                "name": _str(function.get("name"), f"{where}.function.name"),
                "input": _arguments_object(function.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    stop = STOP_REASON.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if isinstance(refusal, str) and refusal:
        stop = "refusal"
    return {
        "id": _str(completion.get("id"), "id"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") if isinstance(completion.get("model"), str) else requested_model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": openai_usage_to_anthropic(completion.get("usage")),
    }


def _arguments_object(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON-text arguments as an object; `{}` for text that is not one (a call cut by
    the output bound ends mid-JSON: Anthropic then answers `input: {}` as well)."""
    if not isinstance(arguments, str):
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- streams --------------------------------------------------------------------------------------------


def _sse_data(payload: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(payload).encode() + b"\n\n"


def _sse_event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + _dumps(payload).encode() + b"\n\n"


def _json_payload(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


class AnthropicToOpenAIStream:
    """Anthropic Messages SSE events in, OpenAI `chat.completion.chunk` SSE lines out.

    Feed each event (`feed(name, data)`, or raw bytes with `feed_raw`); send what comes back to the
    caller. The first chunk carries the role, tool calls open with their id and name, the finish
    chunk follows message_delta, and message_stop ends with a usage chunk (`choices: []`, only when
    the caller asked for `include_usage` and the stream reported usage) and `data: [DONE]`. An
    `error` event becomes an OpenAI error payload, which the openai SDK raises as `APIError`."""

    def __init__(
        self,
        requested_model: str,
        include_usage: bool = False,
        json_tool: str | None = None,
        created: int | None = None,
    ) -> None:
        self.requested_model = requested_model
        self.include_usage = include_usage
        self.json_tool = json_tool
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = requested_model
        self.done = False
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, tuple[str, int]] = {}  # Anthropic block index → (kind, tool call index)
        self._calls = 0
        self._splitter = SSESplitter()

    @property
    def usage(self) -> dict[str, Any] | None:
        """The usage reported so far, in OpenAI's shape (None while unknown)."""
        return anthropic_usage_to_openai(self._usage)

    def feed_raw(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        for raw in self._splitter.feed(chunk):
            name, data = event_fields(raw)
            if data:
                out += self.feed(name, data)
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            payload["usage"] = None
        return _sse_data(payload)

    def feed(self, event_name: str | None, data: str | bytes) -> list[bytes]:
        """The OpenAI SSE lines for one Anthropic event (often none: ping, block stops, thinking)."""
        if self.done:
            return []
        event = _json_payload(data)
        if not isinstance(event, dict):
            return []
        kind = event.get("type") or event_name
        if kind == "message_start":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            self.id = str(message.get("id") or "")
            if isinstance(message.get("model"), str):
                self.model = message["model"]
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self._merge_usage(event.get("usage"))
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            stop = delta.get("stop_reason")
            finish = FINISH_REASON.get(stop, "stop") if isinstance(stop, str) else "stop"
            if finish == "tool_calls" and self.json_tool is not None and self._calls == 0:
                finish = "stop"
            return [self._chunk({}, finish)]
        if kind == "message_stop":
            self.done = True
            out = []
            usage = self.usage
            if self.include_usage and usage is not None:
                out.append(
                    _sse_data(
                        {
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self.model,
                            "system_fingerprint": None,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                )
            out.append(b"data: [DONE]\n\n")
            return out
        if kind == "error":
            self.done = True
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            return [_sse_data(_openai_error_dict(error, None))]
        return []  # ping, content_block_stop, unknown events

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _block_start(self, event: dict[str, Any]) -> list[bytes]:
        index = event.get("index")
        block = event.get("content_block") if isinstance(event.get("content_block"), dict) else {}
        kind = block.get("type")
        if not isinstance(index, int):
            return []
        if kind == "tool_use" and block.get("name") == self.json_tool and self.json_tool is not None:
            self._blocks[index] = ("json", -1)
            return []
        if kind == "tool_use":
            call = self._calls
            self._calls += 1
            self._blocks[index] = ("tool_use", call)
            opening = {
                "index": call,
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [opening]})]
        self._blocks[index] = (str(kind), -1)
        text = block.get("text")
        if kind == "text" and isinstance(text, str) and text:
            return [self._chunk({"content": text})]
        return []

    def _block_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        index = event.get("index")
        kind, call = self._blocks.get(index, ("", -1)) if isinstance(index, int) else ("", -1)
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            piece = delta["partial_json"]
            if kind == "json":
                return [self._chunk({"content": piece})]
            if kind == "tool_use" and piece:
                return [self._chunk({"tool_calls": [{"index": call, "function": {"arguments": piece}}]})]
        return []  # thinking, signature and citations deltas have no chat.completion.chunk field


class OpenAIToAnthropicStream:
    """OpenAI `chat.completion.chunk` SSE payloads in, Anthropic Messages SSE events out.

    Feed each `data:` payload (`feed`, or raw bytes with `feed_raw`). Text and each tool call become
    content blocks; message_start carries zero input tokens (OpenAI reports usage only at the end),
    and message_delta, sent at `[DONE]`, carries the whole usage (the request must ask for
    `include_usage`, as `anthropic_to_openai_chat` does for streams)."""

    def __init__(self, requested_model: str) -> None:
        self.requested_model = requested_model
        self.done = False
        self._started = False
        self._open: int | None = None  # the Anthropic index of the block open now
        self._text_block: int | None = None
        self._tools: dict[int, int] = {}  # OpenAI tool call index → Anthropic block index
        self._next = 0
        self._stop = "end_turn"
        self._usage: dict[str, Any] | None = None
        self._splitter = SSESplitter()

    def feed_raw(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        for raw in self._splitter.feed(chunk):
            _, data = event_fields(raw)
            if data:
                out += self.feed(data)
        return out

    def feed(self, data: str | bytes) -> list[bytes]:
        """The Anthropic events for one OpenAI SSE payload (a chunk, an error or `[DONE]`)."""
        if self.done:
            return []
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if text.strip() == "[DONE]":
            return self._finish()
        chunk = _json_payload(text)
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            self.done = True
            return [_sse_event("error", _anthropic_error_dict(chunk["error"], None))]
        out = [] if self._started else [self._start(chunk)]
        self._started = True
        if isinstance(chunk.get("usage"), dict):
            self._usage = openai_usage_to_anthropic(chunk["usage"])
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def _start(self, chunk: dict[str, Any]) -> bytes:
        model = chunk.get("model") if isinstance(chunk.get("model"), str) else self.requested_model
        message = {
            "id": str(chunk.get("id") or ""),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _sse_event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [_sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open = self._next
        self._next += 1
        out.append(
            _sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": self._open, "content_block": block},
            )
        )
        return out

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        for key in ("content", "refusal"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                if key == "refusal":
                    self._stop = "refusal"
                if self._text_block is None or self._open != self._text_block:
                    out += self._open_block({"type": "text", "text": ""})
                    self._text_block = self._open
                out.append(self._delta({"type": "text_delta", "text": piece}))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if not isinstance(call, dict):
                continue
            position = call.get("index", 0)
            if not isinstance(position, int):
                continue
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            if position not in self._tools:
                opening = {
                    "type": "tool_use",
                    "id": str(call.get("id") or f"toolu_{position}"),
                    "name": str(function.get("name") or ""),
                    "input": {},
                }
                out += self._open_block(opening)
                self._tools[position] = self._open  # type: ignore[assignment]
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, self._tools[position]))
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            if self._stop != "refusal":
                self._stop = STOP_REASON.get(finish, "end_turn")
            out += self._close()
        return out

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._open if index is None else index
        return _sse_event("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _finish(self) -> list[bytes]:
        self.done = True
        if not self._started:
            return []
        out = self._close()
        usage: dict[str, Any] = self._usage if self._usage is not None else {}
        out.append(
            _sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_sse_event("message_stop", {"type": "message_stop"}))
        return out


# -- errors ---------------------------------------------------------------------------------------------

_ANTHROPIC_TO_OPENAI_ERROR = {  # Anthropic error type → (OpenAI type, code)
    "invalid_request_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", None),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}
_OPENAI_CODE_TO_ANTHROPIC = {
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "invalid_api_key": "authentication_error",
    "model_not_found": "not_found_error",
}
_STATUS_TO_ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _error_of(body: bytes | str) -> tuple[dict[str, Any], str | None]:
    """(the body's `error` object, or {}; the body's text when it is not a JSON error)."""
    data = _json_payload(body)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data["error"], None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return {}, text.strip()[:500]


def _upstream(status: int | None, text: str | None) -> str:
    where = f" (HTTP {status})" if status is not None else ""
    return f"the upstream provider answered with an error{where}" + (f": {text}" if text else "")


def _openai_error_dict(error: dict[str, Any], status: int | None, text: str | None = None) -> dict[str, Any]:
    kind = error.get("type")
    default = ("server_error", None) if status is not None and status >= 500 else ("invalid_request_error", None)
    openai_type, code = _ANTHROPIC_TO_OPENAI_ERROR.get(kind, default) if isinstance(kind, str) else default
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = _upstream(status, text)
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code}}


def _anthropic_error_dict(error: dict[str, Any], status: int | None, text: str | None = None) -> dict[str, Any]:
    code, kind = error.get("code"), error.get("type")
    anthropic_type = _OPENAI_CODE_TO_ANTHROPIC.get(code) if isinstance(code, str) else None
    if anthropic_type is None and kind in ("requests", "tokens"):
        anthropic_type = "rate_limit_error"
    if anthropic_type is None and kind == "insufficient_quota":
        anthropic_type = "billing_error"
    if anthropic_type is None and status is not None:
        anthropic_type = _STATUS_TO_ANTHROPIC.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if anthropic_type is None:
        anthropic_type = "api_error" if kind == "server_error" else "invalid_request_error"
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = _upstream(status, text)
    return {"type": "error", "error": {"type": anthropic_type, "message": message}}


def anthropic_error_to_openai(body: bytes, status: int | None = None) -> bytes:
    """An Anthropic error body as an OpenAI one, message kept (`status` refines the type of a body
    that is not a JSON error)."""
    error, text = _error_of(body)
    return _dumps(_openai_error_dict(error, status, text)).encode()


def openai_error_to_anthropic(body: bytes, status: int | None = None) -> bytes:
    """An OpenAI error body as an Anthropic one, message kept (`status` refines the type)."""
    error, text = _error_of(body)
    return _dumps(_anthropic_error_dict(error, status, text)).encode()
