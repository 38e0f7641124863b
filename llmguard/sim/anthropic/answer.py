"""What the simulated Claude answers: an optional thinking block, then a tool_use block or text,
with the output tokens each costs and the stop reason (see `routes.py` for the conventions)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from llmguard.sim.anthropic import wire
from llmguard.sim.anthropic.wire import Block
from llmguard.sim.completion import make_completion
from llmguard.sim.counting import text_tokens
from llmguard.sim.pieces import text_pieces
from llmguard.sim.text import completion_pieces, request_digest

THINKING_MIN, THINKING_MAX = 256, 4096  # what the model would think before any budget cut


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
    split = text_pieces(text, model)
    return split.pieces + [split.rest.decode("utf-8", "replace")] if split.rest else split.pieces


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
        tool_id = wire.tool_use_id()
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
