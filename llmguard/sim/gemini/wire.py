"""Gemini wire shapes: answers (JSON, SSE chunks, a JSON array of chunks), embeddings, token counts,
and Google's error shape (`{"error": {"code", "message", "status", "details"}}`) with the
`google.rpc` details a 429 carries (QuotaFailure, RetryInfo). Pure functions; no I/O.

Streams are `data: <json>\\r\\n\\r\\n` events, as the real API sends them, with no terminator event:
the last chunk is the one whose candidate has a `finishReason`.
"""

from __future__ import annotations

from typing import Any

from llmguard.sim.wire import alnum, dumps

_TYPES = "type.googleapis.com/google.rpc."


def response_id() -> str:
    return alnum(22)


def usage(prompt: int, candidates: int | None, thoughts: int, cached: int) -> dict[str, Any]:
    """`usageMetadata`: the prompt count includes the cached part; thoughts are apart from the
    candidates (both billed as output). `candidates=None`: a stream chunk before the last."""
    use: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates is not None:
        use["candidatesTokenCount"] = candidates
    use["totalTokenCount"] = prompt + (candidates or 0) + thoughts
    if cached:
        use["cachedContentTokenCount"] = cached
    use["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        use["thoughtsTokenCount"] = thoughts
    return use


def chunk(text: str | None, finish: str | None, use: dict[str, Any] | None, model: str, rid: str) -> dict[str, Any]:
    """One GenerateContentResponse: a whole answer, or one stream chunk (`finish` on the last)."""
    content: dict[str, Any] = {"role": "model"}
    if text is not None:
        content["parts"] = [{"text": text}]
    candidate: dict[str, Any] = {"content": content}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    data: dict[str, Any] = {"candidates": [candidate]}
    if use is not None:
        data["usageMetadata"] = use
    data["modelVersion"] = model
    data["responseId"] = rid
    return data


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data).encode() + b"\r\n\r\n"


def embeddings(vectors: list[list[float]], prompt_tokens: int | None, batch: bool) -> bytes:
    """`embedContent` answers one `embedding`, `batchEmbedContents` a list of `embeddings`."""
    data: dict[str, Any] = (
        {"embeddings": [{"values": v} for v in vectors]} if batch else {"embedding": {"values": vectors[0]}}
    )
    if prompt_tokens is not None:
        data["usageMetadata"] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    return dumps(data).encode()


def count_tokens(total: int) -> bytes:
    return dumps({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}).encode()


def error(code: int, message: str, status: str, details: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = details
    return dumps({"error": body}).encode()


def duration(seconds: float) -> str:
    """A `google.protobuf.Duration` in JSON: "12s", "0.05s"."""
    return f"{round(seconds, 3):g}s"


def quota_exhausted(model: str, quota_id: str, limit: int, retry_s: float | None) -> bytes:
    """A 429 RESOURCE_EXHAUSTED as Gemini sends it: the quota that was hit, and when to retry."""
    message = (
        f"You exceeded your current quota, please check your plan and billing details. Quota exceeded for "
        f"metric: generativelanguage.googleapis.com/generate_content_requests, limit: {limit}, model: {model}"
    )
    details: list[dict[str, Any]] = [
        {
            "@type": _TYPES + "QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(limit),
                }
            ],
        },
        {"@type": _TYPES + "Help", "links": [{"description": "Learn more about Gemini API quotas"}]},
    ]
    if retry_s is not None:
        details.append({"@type": _TYPES + "RetryInfo", "retryDelay": duration(retry_s)})
    return error(429, message, "RESOURCE_EXHAUSTED", details)


_FAULT_ERRORS = {  # status: (message, status name)
    500: ("An internal error has occurred. Please retry or report the issue (simulated fault).", "INTERNAL"),
    503: ("The model is overloaded. Please try again later. (simulated fault)", "UNAVAILABLE"),
    529: ("The model is overloaded. Please try again later. (simulated fault)", "UNAVAILABLE"),
}


def fault_error(status: int) -> bytes:
    message, name = _FAULT_ERRORS.get(status, _FAULT_ERRORS[500])
    return error(status, message, name)
