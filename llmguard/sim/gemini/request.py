"""What a Gemini request asks for: its contents checked, its prompt counted, its output planned.

Conventions the real API does not publish (its tokenizer is its own), written down once:

* **Prompt tokens** are the tiktoken (`counting.py`) tokens of every text part of `contents` and
  `systemInstruction`, with no per-message overhead, plus the JSON text of `tools`; an inline or
  file part (an image) is 258 tokens, Gemini's published rate for an image.
* **Implicit caching**: a prompt of 1024+ tokens whose prefix was seen before reports that prefix
  as `cachedContentTokenCount` (the prefix cache of `openai/prefix_cache.py`, on Gemini's parts).
* **Thinking** (2.5 and 3 models): with `thinkingConfig.thinkingBudget` > 0 the model thinks
  64–1024 tokens (from the request digest), at most the budget; -1 (dynamic) thinks as it wants;
  0 or no thinkingConfig does not think. Thoughts count inside `maxOutputTokens` with the answer.
* Field names are read in camelCase or snake_case, as Google's JSON parser accepts both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmguard.sim.counting import encoding_for
from llmguard.sim.text import completion_pieces, request_digest, target_length

IMAGE_TOKENS = 258
THINKING_PREFIXES = ("gemini-2.5", "gemini-3")
_MARK = -1


class BadRequest(Exception):
    """A 400 INVALID_ARGUMENT with this message."""


def field(data: dict[str, Any], camel: str, snake: str) -> Any:
    value = data.get(camel)
    return data.get(snake) if value is None else value


def generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = field(body, "generationConfig", "generation_config")
    return config if isinstance(config, dict) else {}


def check_contents(body: dict[str, Any] | None) -> dict[str, Any]:
    if body is None:
        raise BadRequest("Invalid JSON payload received. Unknown name or malformed request body.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        if not _parts(content):
            raise BadRequest(f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n")
    return body


def _parts(content: Any) -> list[Any]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def prompt_ids(body: dict[str, Any], model: str) -> list[int]:
    """A stable token sequence of the prompt (system first), which its count and cache use."""
    encoding = encoding_for(model)
    ids: list[int] = []
    contents = [field(body, "systemInstruction", "system_instruction"), *(body.get("contents") or [])]
    for content in contents:
        if content is None:
            continue
        ids.append(_MARK)
        for part in _parts(content) if not isinstance(content, str) else [{"text": content}]:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                ids.extend(encoding.encode_ordinary(part["text"]))
            elif isinstance(part, dict) and ("inlineData" in part or "inline_data" in part or "fileData" in part):
                ids.extend([_MARK - 1] * IMAGE_TOKENS)
            else:
                ids.extend(encoding.encode_ordinary(json.dumps(part, sort_keys=True, default=str)))
    tools = body.get("tools")
    if tools:
        ids.extend(encoding.encode_ordinary(json.dumps(tools, sort_keys=True, default=str)))
    return ids


def prompt_tokens(ids: list[int]) -> int:
    return sum(1 for token in ids if token != _MARK)


def embedding_texts(body: dict[str, Any] | None, batch: bool) -> list[str]:
    """The texts an embedding request embeds, one per request of a batch."""
    if body is None:
        raise BadRequest("Invalid JSON payload received. Unknown name or malformed request body.")
    requests = body.get("requests") if batch else [body]
    if not isinstance(requests, list) or not requests:
        raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    texts = []
    for item in requests:
        parts = _parts(item.get("content") if isinstance(item, dict) else None)
        if not parts:
            raise BadRequest("* EmbedContentRequest.content: content is not specified\n")
        texts.append("".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)))
    return texts


@dataclass(frozen=True, slots=True)
class Plan:
    """What the model answers: one-token text pieces, hidden thoughts, why it stopped."""

    pieces: list[str]
    thoughts: int
    finish: str  # "STOP" or "MAX_TOKENS"

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + self.thoughts


def thinking_budget(model: str, config: dict[str, Any]) -> int:
    """The thinking budget in effect: -1 dynamic, 0 none."""
    thinking = field(config, "thinkingConfig", "thinking_config")
    if not model.startswith(THINKING_PREFIXES) or not isinstance(thinking, dict):
        return 0
    budget = field(thinking, "thinkingBudget", "thinking_budget")
    return budget if isinstance(budget, int) and not isinstance(budget, bool) else 0


def plan_answer(body: dict[str, Any], model: str, default_max: int, seed: int) -> Plan:
    config = generation_config(body)
    max_out = field(config, "maxOutputTokens", "max_output_tokens")
    if not isinstance(max_out, int) or isinstance(max_out, bool) or max_out <= 0:
        max_out = default_max
    digest = request_digest("gemini.generateContent", {"model": model, **body}, seed)
    budget = thinking_budget(model, config)
    thoughts = 0
    if budget != 0:
        wants = 64 * (1 + digest[9] % 16)  # 64..1024
        thoughts = min(wants, max_out) if budget < 0 else min(wants, budget, max_out)
    want = target_length(digest)
    room = max_out - thoughts
    pieces = completion_pieces(digest, min(want, room))
    return Plan(pieces, thoughts, "MAX_TOKENS" if want > room else "STOP")
