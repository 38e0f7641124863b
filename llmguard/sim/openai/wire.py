"""OpenAI wire shapes every OpenAI route shares: ids, errors, rate-limit headers and their 429,
the processing-time header, plus the small bodies of models, embeddings and Azure's "Resource not
found". The chat and legacy completion bodies are in `chat_wire.py`, the Responses API's in
`responses_wire.py`. Pure functions from values to bytes/headers; no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from array import array
from typing import Any

from llmguard.sim.buckets import Admission, go_duration
from llmguard.sim.wire import alnum, dumps

SYSTEM_FINGERPRINT = "fp_llmguardsim"


def completion_id() -> str:
    return f"chatcmpl-{random.getrandbits(116):029x}"


def request_id() -> str:
    return f"req_{random.getrandbits(128):032x}"


def text_completion_id() -> str:
    return f"cmpl-{random.getrandbits(116):029x}"


def tool_call_id() -> str:
    """`call_` and 24 letters/digits, like the real API's tool-call ids (chat and Responses)."""
    return "call_" + alnum(24)


def processing_ms(ms: float) -> tuple[str, str]:
    """The `openai-processing-ms` header for an answer that takes `ms` milliseconds."""
    return ("openai-processing-ms", str(int(ms) + 1))


# -- models, embeddings, Azure ---------------------------------------------------------------------


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_list(models: list[dict[str, Any]]) -> bytes:
    return dumps({"object": "list", "data": models}).encode()


def azure_not_found() -> bytes:
    """What Azure OpenAI answers for a path it does not serve, or one without `api-version`."""
    return dumps({"error": {"code": "404", "message": "Resource not found"}}).encode()


def embedding_vector(text_key: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for an input (same input → same vector)."""
    raw = hashlib.shake_256(text_key.encode()).digest(dimensions * 2)
    values = array("h", raw)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def embeddings(model: str, vectors: list[list[float]], prompt_tokens: int, encoding_format: str) -> bytes:
    data = []
    for i, vector in enumerate(vectors):
        value: Any = vector
        if encoding_format == "base64":
            value = base64.b64encode(array("f", vector).tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    ).encode()


# -- errors and rate limits ------------------------------------------------------------------------


def error(
    message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> bytes:
    return dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


_FAULT_ERRORS = {  # status: (message, error type, code)
    429: ("Rate limit reached (simulated fault). Please try again shortly.", "requests", "rate_limit_exceeded"),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    529: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
_SERVER_ERROR = ("The server had an error while processing your request. Sorry about that!", "server_error", None)


def fault_error(status: int) -> bytes:
    message, type_, code = _FAULT_ERRORS.get(status, _SERVER_ERROR)
    return error(message, type_, None, code)


def rate_limit_error(model: str, adm: Admission) -> bytes:
    kind, limit = adm.refusal()
    short = "TPM" if kind == "tokens" else "RPM"
    if adm.requested > limit:
        message = (
            f"Request too large for {model} on {kind} per min ({short}): Limit {limit}, "
            f"Requested {adm.requested}. The input or output tokens must be reduced in order to run successfully."
        )
    else:
        message = (
            f"Rate limit reached for {model} in organization org-llmguard-sim on {kind} per min ({short}): "
            f"Limit {limit}, Used {adm.used}, Requested {adm.requested}. "
            f"Please try again in {go_duration(adm.retry_after_s)}."
        )
    return error(message, kind, None, "rate_limit_exceeded")


def ratelimit_headers(adm: Admission) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, view in (("requests", adm.requests), ("tokens", adm.tokens)):
        if view is not None:
            headers += [
                (f"x-ratelimit-limit-{name}", str(view.limit)),
                (f"x-ratelimit-remaining-{name}", str(view.remaining)),
                (f"x-ratelimit-reset-{name}", go_duration(view.reset_s)),
            ]
    return headers
