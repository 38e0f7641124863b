"""OpenAI chat message content as Anthropic blocks: text, images, an assistant's tool calls and a
tool message's result. Each part's path is kept for the error a malformed part raises."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from llmguard.providers.translate.common import SAME_PROVIDER, TO_ANTHROPIC, Log, TranslationError
from llmguard.providers.translate.shapes import drop_extra, expect_dict, expect_list, expect_str, is_blank, malformed

MESSAGE_KEYS = ("role", "content", "cache_control")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)


def with_cache_control(blocks: list[dict[str, Any]], message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A message-level `cache_control` (LiteLLM's form for string content) put on its last block."""
    control = message.get("cache_control")
    if control is not None and blocks:
        blocks[-1]["cache_control"] = expect_dict(control, f"{where}.cache_control")
    return blocks


def tool_result_block(message: dict[str, Any], where: str, log: Log) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": expect_str(message.get("tool_call_id"), f"{where}.tool_call_id"),
    }
    content = message.get("content")
    if isinstance(content, str):
        if content:
            result["content"] = content
    else:
        blocks = text_blocks(content, f"{where}.content", log, "a tool message")
        if blocks:
            result["content"] = compact_blocks(blocks)
    return result


def compact_blocks(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text block as a string (the natural form); anything else as blocks."""
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"} and blocks[0]["type"] == "text":
        return str(blocks[0]["text"])
    return blocks


def _text_block(part: dict[str, Any], where: str, log: Log) -> dict[str, Any] | None:
    text = expect_str(part.get("text"), f"{where}.text")
    if is_blank(text):
        log.drop(where, "blank text parts were left out: Anthropic refuses empty text blocks")
        return None
    block: dict[str, Any] = {"type": "text", "text": text}
    control = part.get("cache_control")
    if control is not None:
        block["cache_control"] = expect_dict(control, f"{where}.cache_control")
    drop_extra(part, ("type", "text", "cache_control"), where, log)
    return block


def _each_part(content: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, part) of each content part of a list, checked to be objects as they come."""
    for j, raw in enumerate(expect_list(content, where, "a string or a list of content parts")):
        at = f"{where}[{j}]"
        yield at, expect_dict(raw, at, "a content part")


def text_blocks(content: Any, where: str, log: Log, what: str) -> list[dict[str, Any]]:
    """Text-only content (system, developer, tool messages) as Anthropic text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [] if is_blank(content) else [{"type": "text", "text": content}]
    blocks = []
    for at, part in _each_part(content, where):
        if part.get("type") != "text":
            raise TranslationError(
                f"{TO_ANTHROPIC}: {at} is a {part.get('type')!r} part in {what}",
                "Anthropic takes text only there: send text parts",
                at,
            )
        block = _text_block(part, at, log)
        if block is not None:
            blocks.append(block)
    return blocks


def user_blocks(content: Any, where: str, log: Log) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if is_blank(content):
            return []
        return [{"type": "text", "text": content}]
    blocks = []
    for at, part in _each_part(content, where):
        kind = part.get("type")
        if kind == "text":
            block = _text_block(part, at, log)
            if block is not None:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(_openai_image(part, at, log))
        elif kind in ("input_audio", "file"):
            raise TranslationError(
                f"{TO_ANTHROPIC}: {at} is an {kind!r} part",
                "Anthropic Messages take text and images: use a fallback of the same provider for audio "
                "and file inputs",
                at,
            )
        else:
            raise malformed(f"{at}.type", "'text', 'image_url', 'input_audio' or 'file'", kind)
    return blocks


def _openai_image(part: dict[str, Any], where: str, log: Log) -> dict[str, Any]:
    spec = expect_dict(part.get("image_url"), f"{where}.image_url")
    url = expect_str(spec.get("url"), f"{where}.image_url.url")
    drop_extra(spec, ("url",), f"{where}.image_url", log, "image detail levels have no Anthropic equivalent")
    found = _DATA_URL.fullmatch(url)
    if found:
        media_type, data = found.group(1).lower(), found.group(2)
        if media_type not in _IMAGE_TYPES:
            raise TranslationError(
                f"{TO_ANTHROPIC}: {where} is a {media_type} image",
                f"Anthropic takes {', '.join(_IMAGE_TYPES)}: convert the image first",
                where,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(
        f"{TO_ANTHROPIC}: {where} has an image URL that is neither https:// nor a base64 data: URL",
        "send the image as a base64 data: URL",
        where,
    )


def assistant_blocks(message: dict[str, Any], where: str, log: Log) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        raise TranslationError(
            f"{TO_ANTHROPIC}: {where} has a deprecated function_call",
            "record tool calls as tool_calls with ids",
            f"{where}.function_call",
        )
    drop_extra(message, (*MESSAGE_KEYS, "tool_calls", "refusal", "function_call"), where, log)
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if not is_blank(content):
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        for at, part in _each_part(content, f"{where}.content"):
            kind = part.get("type")
            if kind == "refusal":
                text = expect_str(part.get("refusal"), f"{at}.refusal")
                if not is_blank(text):
                    blocks.append({"type": "text", "text": text})
            elif kind == "text":
                block = _text_block(part, at, log)
                if block is not None:
                    blocks.append(block)
            else:
                raise malformed(f"{at}.type", "'text' or 'refusal'", kind)
    refusal = message.get("refusal")
    if refusal is not None and not is_blank(expect_str(refusal, f"{where}.refusal")):
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    if calls is not None:
        for j, raw in enumerate(expect_list(calls, f"{where}.tool_calls")):
            blocks.append(_openai_tool_call(expect_dict(raw, f"{where}.tool_calls[{j}]"), f"{where}.tool_calls[{j}]"))
    return blocks


def _openai_tool_call(call: dict[str, Any], where: str) -> dict[str, Any]:
    if call.get("type", "function") != "function":
        raise TranslationError(
            f"{TO_ANTHROPIC}: {where} is a {call.get('type')!r} tool call",
            f"Anthropic has function tools only; {SAME_PROVIDER}",
            where,
        )
    function = expect_dict(call.get("function"), f"{where}.function")
    name = expect_str(function.get("name"), f"{where}.function.name")
    arguments = function.get("arguments")
    arguments = "" if arguments is None else expect_str(arguments, f"{where}.function.arguments")
    value: Any = {}
    if arguments.strip():
        try:
            value = json.loads(arguments)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise TranslationError(
            f"{TO_ANTHROPIC}: the arguments of {where} are not a JSON object",
            "Anthropic tool inputs are objects: repair the call's arguments or leave the call out of the history",
            f"{where}.function.arguments",
        )
    return {"type": "tool_use", "id": expect_str(call.get("id"), f"{where}.id"), "name": name, "input": value}
