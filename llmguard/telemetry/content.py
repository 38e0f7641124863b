"""Prompt and answer text as GenAI span attributes (only with `otel_content=True`), and finish reasons.

The ledger row (`CallEvent`) holds no prompt or answer text. The request's body (the parsed
`CallRequest`) has the prompt; the answer's bytes are held by the guard only when it keeps the
whole answer (an answer it is about to cache), so `gen_ai.output.messages` and
`gen_ai.response.finish_reasons` appear for those calls only. Everything here runs on the export
thread: the caller never pays for parsing. Text is scrubbed of anything key-shaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmguard import redact

MAX_CHARS = 64_000  # one attribute's text is cut here: a backend refuses or drops bigger values


@dataclass
class Answer:
    """What an answer's bytes say: its text per choice and why each choice stopped."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    finish_reasons: dict[int, str] = field(default_factory=dict)

    def add(self, index: int, text: Any) -> None:
        if isinstance(text, str) and text:
            self.texts.setdefault(index, []).append(text)

    def stop(self, index: int, reason: Any) -> None:
        if isinstance(reason, str) and reason:
            self.finish_reasons[index] = reason

    def reasons(self) -> tuple[str, ...]:
        return tuple(self.finish_reasons[i] for i in sorted(self.finish_reasons))


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as GenAI parts: text kept, other blocks named by their type only."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, dict):
        content = [content]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append({"type": "text", "content": block["text"]})
        elif isinstance(block, dict):
            parts.append({"type": str(block.get("type", "unknown"))})
    return parts


def _messages(items: Any, default_role: str = "user") -> list[dict[str, Any]]:
    if isinstance(items, str | dict):
        items = [items]
    out = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            content = item.get("content", item.get("parts"))
            out.append({"role": str(item.get("role") or default_role), "parts": _parts(content)})
        else:
            out.append({"role": default_role, "parts": _parts(item)})
    return out


def prompt_attributes(body: dict[str, Any]) -> dict[str, str]:
    """`gen_ai.input.messages` and `gen_ai.system_instructions` from a request body (any wire format)."""
    if "messages" in body:  # openai chat, anthropic messages
        messages, system = _messages(body["messages"]), body.get("system")
    elif "contents" in body:  # gemini
        messages = _messages(body["contents"])
        instruction = body.get("systemInstruction") or body.get("system_instruction")
        system = instruction.get("parts") if isinstance(instruction, dict) else instruction
    elif "input" in body:  # openai responses, embeddings
        messages, system = _messages(body["input"]), body.get("instructions")
    elif "prompt" in body:  # openai completions
        messages, system = _messages(body["prompt"]), None
    else:
        return {}
    attrs = {"gen_ai.input.messages": _text(messages)}
    if system:
        attrs["gen_ai.system_instructions"] = _text(_parts(system))
    return attrs


def answer_attributes(answer: Answer) -> dict[str, str]:
    """`gen_ai.output.messages` from what an answer said."""
    indexes = sorted(set(answer.texts) | set(answer.finish_reasons))
    if not indexes:
        return {}
    messages = []
    for index in indexes:
        message: dict[str, Any] = {"role": "assistant", "parts": _parts("".join(answer.texts.get(index, [])))}
        if index in answer.finish_reasons:
            message["finish_reason"] = answer.finish_reasons[index]
        messages.append(message)
    return {"gen_ai.output.messages": _text(messages)}


def _text(value: Any) -> str:
    text = redact.scrub(json.dumps(value, ensure_ascii=False)) or ""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "...[cut]"


# ---- answers ------------------------------------------------------------------------------------


def read_answer(body: bytes) -> Answer:
    """An answer's text and finish reasons from its bytes: one JSON body or an SSE stream."""
    answer = Answer()
    try:
        text = body.decode("utf-8", "replace")
    except Exception:
        return answer
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            _read(json.loads(stripped), answer)
        except ValueError:
            pass
        return answer
    for line in text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data and data != "[DONE]":
                try:
                    _read(json.loads(data), answer)
                except ValueError:
                    continue
    return answer


def _read(payload: Any, answer: Answer) -> None:
    """One JSON answer or one stream event, of any of the wire formats, into `answer`."""
    if isinstance(payload, list):  # gemini's streamGenerateContent without alt=sse
        for item in payload:
            _read(item, answer)
        return
    if not isinstance(payload, dict):
        return
    for choice in payload.get("choices") or ():  # openai chat and completions, whole or streamed
        index = choice.get("index", 0)
        message = choice.get("message") or choice.get("delta") or {}
        answer.add(index, message.get("content") if isinstance(message, dict) else None)
        answer.add(index, choice.get("text"))
        answer.stop(index, choice.get("finish_reason"))
    for index, candidate in enumerate(payload.get("candidates") or ()):  # gemini
        content = candidate.get("content") or {}
        for part in content.get("parts") or ():
            answer.add(candidate.get("index", index), part.get("text"))
        answer.stop(candidate.get("index", index), candidate.get("finishReason"))
    _read_anthropic(payload, answer)
    _read_responses(payload, answer)


def _read_anthropic(payload: dict[str, Any], answer: Answer) -> None:
    kind = payload.get("type")
    if kind == "message":
        for block in payload.get("content") or ():
            if isinstance(block, dict) and block.get("type") == "text":
                answer.add(0, block.get("text"))
        answer.stop(0, payload.get("stop_reason"))
    elif kind == "content_block_delta":
        delta = payload.get("delta") or {}
        answer.add(0, delta.get("text"))
    elif kind == "message_delta":
        answer.stop(0, (payload.get("delta") or {}).get("stop_reason"))


def _read_responses(payload: dict[str, Any], answer: Answer) -> None:
    kind = payload.get("type")
    if kind == "response.output_text.delta":
        answer.add(0, payload.get("delta"))
        return
    response = payload.get("response") if kind == "response.completed" else payload
    if not isinstance(response, dict) or response.get("object") != "response":
        return
    if kind != "response.completed":  # a whole answer: its text is in its output items
        for item in response.get("output") or ():
            for part in item.get("content") or () if isinstance(item, dict) else ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    answer.add(0, part.get("text"))
    details = response.get("incomplete_details") or {}
    if response.get("status") == "incomplete" and isinstance(details, dict):
        answer.stop(0, details.get("reason"))
    elif response.get("status") == "completed":
        answer.stop(0, "stop")
