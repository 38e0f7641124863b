"""Whole (non-streamed) answers: an Anthropic `message` ⇄ an OpenAI `chat.completion`.

Finish reasons end_turn/stop_sequence/pause_turn ↔ stop, max_tokens ↔ length, tool_use ↔
tool_calls, refusal ↔ content_filter; usage as in `usage`. The forced structured-output tool
(`Translated.json_tool`) comes back as the message's JSON text with finish_reason `stop`."""

from __future__ import annotations

import json
import time
from typing import Any

from llmguard.providers.translate.common import TranslationError
from llmguard.providers.translate.shapes import expect_dict, expect_list, expect_str
from llmguard.providers.translate.usage import anthropic_usage_to_openai, openai_usage_to_anthropic
from llmguard.providers.translate.wire import FINISH_REASON, STOP_REASON, spaced_json

_ANSWER = "this answer"


def anthropic_message_to_openai_chat_completion(
    message: dict[str, Any], requested_model: str, json_tool: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """An Anthropic `message` as an OpenAI `chat.completion`. `model` is the model that answered
    (`requested_model` only when the message names none); `json_tool` is `Translated.json_tool`."""
    message = expect_dict(message, _ANSWER, "a message object")
    blocks = expect_list(message.get("content"), "content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answered_json = False
    for j, raw in enumerate(blocks):
        block = expect_dict(raw, f"content[{j}]", "a content block")
        kind = block.get("type")
        if kind == "text":
            texts.append(expect_str(block.get("text"), f"content[{j}].text"))
        elif kind == "tool_use":
            value = block.get("input")
            name = expect_str(block.get("name"), f"content[{j}].name")
            if json_tool is not None and name == json_tool:
                texts.append(spaced_json(value if value is not None else {}))
                answered_json = True
            else:
                calls.append(
                    {
                        "id": expect_str(block.get("id"), f"content[{j}].id"),
                        "type": "function",
                        "function": {"name": name, "arguments": spaced_json(value if value is not None else {})},
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
        "id": expect_str(message.get("id"), "id"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": message.get("model") if isinstance(message.get("model"), str) else requested_model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": anthropic_usage_to_openai(message.get("usage")),
        "system_fingerprint": None,
    }


def openai_chat_completion_to_anthropic_message(completion: dict[str, Any], requested_model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` (one choice) as an Anthropic `message`."""
    completion = expect_dict(completion, _ANSWER, "a chat.completion object")
    choices = expect_list(completion.get("choices"), "choices")
    if len(choices) != 1:
        raise TranslationError(
            f"a chat.completion with {len(choices)} choices into an Anthropic message",
            "an Anthropic message holds one answer: ask for n=1",
            "choices",
        )
    choice = expect_dict(choices[0], "choices[0]")
    reply = expect_dict(choice.get("message"), "choices[0].message")
    content: list[dict[str, Any]] = []
    text = reply.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = reply.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    for j, raw in enumerate(expect_list(reply.get("tool_calls") or [], "choices[0].message.tool_calls")):
        where = f"choices[0].message.tool_calls[{j}]"
        call = expect_dict(raw, where)
        function = expect_dict(call.get("function"), f"{where}.function")
        content.append(
            {
                "type": "tool_use",
                "id": expect_str(call.get("id"), f"{where}.id"),
                "name": expect_str(function.get("name"), f"{where}.function.name"),
                "input": _arguments_object(function.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    stop = STOP_REASON.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if isinstance(refusal, str) and refusal:
        stop = "refusal"
    return {
        "id": expect_str(completion.get("id"), "id"),
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
