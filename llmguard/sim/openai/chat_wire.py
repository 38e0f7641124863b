"""OpenAI chat and legacy completion bodies: `chat.completion` objects (text or tool calls, n
choices), their `chat.completion.chunk` SSE stream, and the legacy `text_completion` JSON and stream.

Pure functions from values to bytes; no I/O. The shapes follow the real API closely enough that the
`openai` SDK parses them into its own objects. Stream chunks are built from a per-response template
plus one JSON-quoted token, because a full `json.dumps` per chunk would make a 300-token stream cost
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmguard.sim.openai.wire import SYSTEM_FINGERPRINT
from llmguard.sim.wire import dumps, quote


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class ChatChoice:
    """One answer of a chat completion. `pieces` is what a stream sends one chunk each: the content's
    tokens, or the tool call's argument fragments."""

    index: int
    finish: str
    content: str | None = None
    tool_call: ToolCall | None = None
    pieces: list[str] = field(default_factory=list)


def usage(prompt: int, cached: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(cid: str, created: int, model: str, text: str, finish: str, use: dict[str, Any] | None) -> bytes:
    """A `chat.completion` object; built from a template (this is the hot path of every benchmark).
    `use=None` leaves usage out (the no_usage fault)."""
    return (
        f'{{"id":{quote(cid)},"object":"chat.completion","created":{created},"model":{quote(model)},'
        f'"choices":[{{"index":0,"message":{{"role":"assistant","content":{quote(text)},"refusal":null,'
        f'"annotations":[]}},"logprobs":null,"finish_reason":{quote(finish)}}}],"usage":{dumps(use) if use else "null"},'
        f'"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}"}}'
    ).encode()


def _message(choice: ChatChoice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None}
    if choice.tool_call is not None:
        call = choice.tool_call
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ]
    message["annotations"] = []
    return message


def chat_completion_choices(
    cid: str, created: int, model: str, choices: list[ChatChoice], use: dict[str, Any] | None
) -> bytes:
    """A `chat.completion` with any number of choices, text or tool calls (`use=None`: no usage)."""
    return dumps(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": c.index, "message": _message(c), "logprobs": None, "finish_reason": c.finish} for c in choices
            ],
            "usage": use,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    ).encode()


def chat_stream_choices(
    cid: str,
    created: int,
    model: str,
    choices: list[ChatChoice],
    use: dict[str, Any],
    include_usage: bool,
) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, events, tail) of a `chat.completion.chunk` stream.

    Each chunk carries one choice, as the real API sends them. The preamble holds each choice's
    first chunk (role, and for a tool call its id, type and name with empty arguments); event `k`
    holds the k-th piece of every choice still going (choices are generated side by side); the tail
    holds each choice's finish chunk, the usage chunk when `include_usage` (then every chunk has
    `"usage":null`), and `data: [DONE]`.
    """
    head = (
        f'data: {{"id":{quote(cid)},"object":"chat.completion.chunk","created":{created},'
        f'"model":{quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
        '"choices":[{"index":'
    )
    tail_null = "}" if not include_usage else ',"usage":null}'
    mid = ',"logprobs":null,"finish_reason":null}]' + tail_null + "\n\n"
    preamble: list[str] = []
    for c in choices:
        if c.tool_call is None:
            delta = '{"role":"assistant","content":"","refusal":null}'
        else:
            call = c.tool_call
            delta = (
                '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":'
                f'{quote(call.id)},"type":"function","function":{{"name":{quote(call.name)},'
                '"arguments":""}}],"refusal":null}'
            )
        preamble.append(f'{head}{c.index},"delta":{delta}{mid}')
    events: list[bytes] = []
    longest = max((len(c.pieces) for c in choices), default=0)
    for k in range(longest):
        step = []
        for c in choices:
            if k < len(c.pieces):
                if c.tool_call is None:
                    delta = '{"content":' + quote(c.pieces[k]) + "}"
                else:
                    delta = '{"tool_calls":[{"index":0,"function":{"arguments":' + quote(c.pieces[k]) + "}}]}"
                step.append(f'{head}{c.index},"delta":{delta}{mid}')
        events.append("".join(step).encode())
    tail = "".join(
        f'{head}{c.index},"delta":{{}},"logprobs":null,"finish_reason":"{c.finish}"}}]{tail_null}\n\n' for c in choices
    )
    if include_usage:
        tail += (
            f'data: {{"id":{quote(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{quote(model)},"service_tier":"default","system_fingerprint":"{SYSTEM_FINGERPRINT}",'
            f'"choices":[],"usage":{dumps(use)}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return "".join(preamble).encode(), events, tail.encode()


# -- legacy text completions ---------------------------------------------------------------------


def completion_usage(prompt: int, completion: int) -> dict[str, Any]:
    """The legacy endpoint's usage: the three totals only."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def text_completion(
    cid: str, created: int, model: str, choices: list[tuple[str, str]], use: dict[str, Any] | None
) -> bytes:
    """A `text_completion` object; `choices` are (text, finish reason) in index order."""
    return dumps(
        {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"text": text, "index": i, "logprobs": None, "finish_reason": finish}
                for i, (text, finish) in enumerate(choices)
            ],
            "usage": use,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    ).encode()


def text_completion_stream(
    cid: str,
    created: int,
    model: str,
    choices: list[tuple[list[str], str]],
    use: dict[str, Any],
    include_usage: bool,
) -> tuple[list[bytes], bytes]:
    """(events, tail) of a legacy stream: event `k` holds the k-th token of every choice still going
    (one `text_completion` chunk per choice); the tail holds each choice's finish chunk (empty text),
    the usage chunk when `include_usage`, and `data: [DONE]`. The legacy endpoint sends no role chunk."""
    head = f'data: {{"id":{quote(cid)},"object":"text_completion","created":{created},"choices":[{{"text":'
    foot = f'"model":{quote(model)},"system_fingerprint":"{SYSTEM_FINGERPRINT}"'
    foot += ',"usage":null}\n\n' if include_usage else "}\n\n"
    events: list[bytes] = []
    longest = max((len(pieces) for pieces, _ in choices), default=0)
    for k in range(longest):
        step = [
            f'{head}{quote(pieces[k])},"index":{i},"logprobs":null,"finish_reason":null}}],{foot}'
            for i, (pieces, _) in enumerate(choices)
            if k < len(pieces)
        ]
        events.append("".join(step).encode())
    tail = "".join(
        f'{head}"","index":{i},"logprobs":null,"finish_reason":"{finish}"}}],{foot}'
        for i, (_, finish) in enumerate(choices)
    )
    if include_usage:
        tail += (
            f'data: {{"id":{quote(cid)},"object":"text_completion","created":{created},"choices":[],'
            f'"model":{quote(model)},"system_fingerprint":"{SYSTEM_FINGERPRINT}","usage":{dumps(use)}}}\n\n'
        )
    tail += "data: [DONE]\n\n"
    return events, tail.encode()
