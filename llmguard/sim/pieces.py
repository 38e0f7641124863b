"""Token-by-token pieces of a text, for streams: one piece per token, except that a character whose
bytes span several tokens goes whole with its last token (a piece never splits a character).

Used wherever an answer is JSON or other non-passage text: OpenAI tool arguments and structured
answers, Responses API deltas, Anthropic `partial_json` fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmguard.sim.counting import encoding_for


@dataclass(frozen=True, slots=True)
class Pieces:
    pieces: list[str]
    spans: list[int]  # how many tokens each piece stands for
    rest: bytes  # the bytes of trailing tokens that end inside a character (no piece of their own)


def token_pieces(tokens: list[int], model: str) -> Pieces:
    encoding = encoding_for(model)
    pieces: list[str] = []
    spans: list[int] = []
    pending, count = b"", 0
    for token in encoding.decode_tokens_bytes(tokens):
        pending += token
        count += 1
        try:
            piece = pending.decode("utf-8")
        except UnicodeDecodeError:
            continue
        pieces.append(piece)
        spans.append(count)
        pending, count = b"", 0
    return Pieces(pieces, spans, pending)


def text_pieces(text: str, model: str) -> Pieces:
    """`text` tokenized with the model's encoding, as pieces."""
    return token_pieces(encoding_for(model).encode_ordinary(text), model)
