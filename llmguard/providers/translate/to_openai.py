"""Requests, Anthropic Messages → OpenAI chat (`anthropic_to_openai_chat`).

`system` → a system message; text and image blocks → content parts; `tool_use` → `tool_calls`
(JSON-text arguments); `tool_result` blocks → `role="tool"` messages ahead of the turn's other parts
(text only: images raise); `thinking` / `redacted_thinking` blocks and the `thinking` parameter →
dropped with a note; `cache_control` → dropped (OpenAI caches prefixes by itself); `max_tokens` →
`max_completion_tokens`; `stop_sequences` → `stop` (more than 4 raise: OpenAI takes 4); `top_k` →
dropped; tool_choice any/tool → required/named; `disable_parallel_tool_use` →
`parallel_tool_calls=false`; server tools, documents, search results → TranslationError; `stream`
also asks for usage (`include_usage`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llmguard.providers.translate.common import SAME_PROVIDER, TO_OPENAI, Log, Translated, TranslationError
from llmguard.providers.translate.shapes import (
    drop_extra,
    expect_dict,
    expect_list,
    expect_number,
    expect_positive_int,
    expect_stops,
    expect_str,
    malformed,
)
from llmguard.providers.translate.wire import compact_json

OPENAI_MAX_STOP = 4  # OpenAI takes at most 4 stop sequences
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
    body = expect_dict(body, "the request body")
    log = Log()
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        parts = _anthropic_text_parts(system, "system", log, "the system prompt")
        if parts:
            messages.append({"role": "system", "content": _openai_compact(parts)})
    messages += _anthropic_messages(expect_list(body.get("messages"), "messages"), log)
    out: dict[str, Any] = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = expect_positive_int(body["max_tokens"], "max_tokens")
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = expect_number(body[key], key)
    if body.get("stop_sequences") is not None:
        stops = expect_stops(body["stop_sequences"], "stop_sequences")
        if len(stops) > OPENAI_MAX_STOP:
            raise TranslationError(
                f"{TO_OPENAI}: {len(stops)} stop_sequences",
                f"OpenAI takes at most {OPENAI_MAX_STOP}: send {OPENAI_MAX_STOP} or fewer, or {SAME_PROVIDER}",
                "stop_sequences",
            )
        if stops:
            out["stop"] = stops
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise malformed("stream", "a boolean", stream)
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # message_delta needs the usage
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = expect_dict(metadata, "metadata")
        if metadata.get("user_id") is not None:
            out["user"] = expect_str(metadata["user_id"], "metadata.user_id")
        drop_extra(metadata, ("user_id",), "metadata", log)
    _anthropic_tools(body, out, log)
    for key, value in body.items():
        if key not in _ANTHROPIC_HANDLED and value is not None:
            log.drop(key, _THINKING_NOTE if key == "thinking" else None)
    return Translated(out, log.dropped, log.notes)


def _openai_compact(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _anthropic_text_parts(content: Any, where: str, log: Log, what: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return _text_only(content, where, log, f"in {what}", "OpenAI takes text only there: send text blocks")


def _text_only(content: Any, where: str, log: Log, inside: str, fix: str) -> list[dict[str, Any]]:
    """The text parts of a block list where OpenAI takes text only; any other block raises (`inside`
    says where it stood, `fix` what to do)."""
    parts = []
    for at, block in _each_block(expect_list(content, where, "a string or a list of content blocks"), where):
        if block.get("type") != "text":
            raise TranslationError(f"{TO_OPENAI}: {at} is a {block.get('type')!r} block {inside}", fix, at)
        parts.append(_anthropic_text(block, at, log))
    return parts


def _each_block(blocks: list[Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, block) of each content block, checked to be an object as it comes."""
    for j, raw in enumerate(blocks):
        at = f"{where}[{j}]"
        yield at, expect_dict(raw, at, "a content block")


def _anthropic_text(block: dict[str, Any], where: str, log: Log) -> dict[str, Any]:
    text = expect_str(block.get("text"), f"{where}.text")
    if block.get("cache_control") is not None:
        log.drop(f"{where}.cache_control", _CACHE_NOTE)
    drop_extra(block, ("type", "text", "cache_control"), where, log)
    return {"type": "text", "text": text}


def _anthropic_messages(messages: list[Any], log: Log) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = expect_dict(raw, where, "a message object")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise malformed(f"{where}.role", "'user' or 'assistant'", role)
        drop_extra(message, ("role", "content"), where, log)
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        blocks = expect_list(content, f"{where}.content", "a string or a list of content blocks")
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


def _anthropic_user(blocks: list[Any], where: str, log: Log) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for at, block in _each_block(blocks, where):
        kind = block.get("type")
        if kind == "text":
            parts.append(_anthropic_text(block, at, log))
        elif kind == "image":
            parts.append(_anthropic_image(block, at, log))
        elif kind == "tool_result":
            results.append(_anthropic_tool_result(block, at, log))
        elif kind in ("document", "search_result", "container_upload"):
            raise TranslationError(
                f"{TO_OPENAI}: {at} is a {kind!r} block",
                f"OpenAI chat has no such input: {SAME_PROVIDER}, or send the text itself",
                at,
            )
        else:
            raise malformed(f"{at}.type", "'text', 'image' or 'tool_result'", kind)
    out = results
    if parts:
        out.append({"role": "user", "content": _openai_compact(parts)})
    elif not results:
        log.drop(where, "empty messages were left out")
    return out


def _anthropic_image(block: dict[str, Any], where: str, log: Log) -> dict[str, Any]:
    source = expect_dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if block.get("cache_control") is not None:
        log.drop(f"{where}.cache_control", _CACHE_NOTE)
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), f"{where}.source.media_type")
        url = f"data:{media_type};base64,{expect_str(source.get('data'), f'{where}.source.data')}"
    elif kind == "url":
        url = expect_str(source.get("url"), f"{where}.source.url")
    else:
        raise TranslationError(
            f"{TO_OPENAI}: {where} has an image source of type {kind!r}",
            "OpenAI takes images as URLs or base64 data: send the image as base64",
            where,
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _anthropic_tool_result(block: dict[str, Any], where: str, log: Log) -> dict[str, Any]:
    call_id = expect_str(block.get("tool_use_id"), f"{where}.tool_use_id")
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
        fix = "OpenAI tool messages hold text only: describe the result in text"
        parts = _text_only(content, f"{where}.content", log, "inside a tool_result", fix)
        text = _openai_compact(parts) if parts else ""
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _anthropic_assistant(blocks: list[Any], where: str, log: Log) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for at, block in _each_block(blocks, where):
        kind = block.get("type")
        if kind == "text":
            texts.append(_anthropic_text(block, at, log)["text"])
        elif kind in ("thinking", "redacted_thinking"):
            log.drop(at, _THINKING_NOTE)
        elif kind == "tool_use":
            value = expect_dict(block.get("input"), f"{at}.input")
            calls.append(
                {
                    "id": expect_str(block.get("id"), f"{at}.id"),
                    "type": "function",
                    "function": {"name": expect_str(block.get("name"), f"{at}.name"), "arguments": compact_json(value)},
                }
            )
            if block.get("cache_control") is not None:
                log.drop(f"{at}.cache_control", _CACHE_NOTE)
        elif kind in ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result") or (
            isinstance(kind, str) and kind.endswith("_tool_result")
        ):
            raise TranslationError(
                f"{TO_OPENAI}: {at} is a {kind!r} block (an Anthropic server tool)",
                f"OpenAI chat cannot replay server tools: {SAME_PROVIDER}",
                at,
            )
        else:
            raise malformed(f"{at}.type", "'text', 'thinking', 'redacted_thinking' or 'tool_use'", kind)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _anthropic_tools(body: dict[str, Any], out: dict[str, Any], log: Log) -> None:
    tools: list[dict[str, Any]] = []
    for i, raw in enumerate(expect_list(body.get("tools") or [], "tools")):
        where = f"tools[{i}]"
        tool = expect_dict(raw, where, "a tool object")
        if tool.get("type") not in (None, "custom"):
            raise TranslationError(
                f"{TO_OPENAI}: {where} is the Anthropic server tool {tool.get('type')!r}",
                f"OpenAI chat has function tools only: {SAME_PROVIDER}, or define a custom tool",
                where,
            )
        function: dict[str, Any] = {"name": expect_str(tool.get("name"), f"{where}.name")}
        if tool.get("description") is not None:
            function["description"] = expect_str(tool["description"], f"{where}.description")
        function["parameters"] = expect_dict(tool.get("input_schema"), f"{where}.input_schema")
        if tool.get("cache_control") is not None:
            log.drop(f"{where}.cache_control", _CACHE_NOTE)
        drop_extra(tool, ("type", "name", "description", "input_schema", "cache_control"), where, log)
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if choice is None:
        return
    choice = expect_dict(choice, "tool_choice")
    kind = choice.get("type")
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool":
        out["tool_choice"] = {
            "type": "function",
            "function": {"name": expect_str(choice.get("name"), "tool_choice.name")},
        }
    else:
        raise malformed("tool_choice.type", "'auto', 'any', 'tool' or 'none'", kind)
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is True and tools and kind != "none":
        out["parallel_tool_calls"] = False
    drop_extra(choice, ("type", "name", "disable_parallel_tool_use"), "tool_choice", log)
