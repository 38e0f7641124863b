"""What the simulated model answers: deterministic text, reasoning tokens and the finish reason.

Same request body → same answer, so tests and cached replays can compare texts. The answer has a
natural length (20–300 tokens, from the request digest) and is cut at the request's max tokens;
reasoning models (o1, o3, o4, gpt-5 families) also spend a deterministic number of hidden reasoning
tokens that count inside the output tokens and inside the max-tokens bound, as OpenAI bills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmguard.sim.text import completion_pieces, request_digest, target_length

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(model: str) -> bool:
    return model.startswith(REASONING_PREFIXES)


@dataclass(frozen=True, slots=True)
class Completion:
    pieces: list[str]  # one token each; the stream sends one piece per chunk
    reasoning_tokens: int
    truncated: bool  # cut by max tokens → finish_reason "length" / stop_reason "max_tokens"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def visible_tokens(self) -> int:
        return len(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + self.reasoning_tokens


def make_completion(route: str, body: dict[str, Any], model: str, max_tokens: int, seed: int = 0) -> Completion:
    digest = request_digest(route, body, seed)
    want = target_length(digest)
    reasoning = 0
    if is_reasoning_model(model):
        reasoning = min(64 * (1 + digest[8] % 8), max_tokens)  # 64..512, like real multiples of 64
    room = max(0, max_tokens - reasoning)
    visible = min(want, room)
    return Completion(completion_pieces(digest, visible), reasoning, truncated=want > room)
