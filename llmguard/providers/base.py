"""Helpers shared by the wire-format adapters; the records themselves live in llmguard.types."""

from __future__ import annotations

from typing import Any

from llmguard.types import CallRequest, ProviderParseError, StreamState, Usage

__all__ = [
    "CallRequest",
    "ProviderParseError",
    "StreamState",
    "Usage",
    "json_body",
    "noted_error_body",
    "request_object",
]


def request_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object with a model, or a ProviderParseError saying what is wrong."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderParseError(f"request body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProviderParseError("request body is not a JSON object")
    if not isinstance(data.get("model"), str):
        raise ProviderParseError("request has no model")
    return data


def json_body(data: dict[str, Any]) -> bytes:
    """Compact JSON, as the SDKs send it."""
    import json

    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def noted_error_body(body: bytes, note: str) -> bytes:
    """`note` put before `error.message` (the OpenAI and Anthropic error shapes both have one)."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        error["message"] = f"{note}. The provider said: {error['message']}"
        return json_body(data)
    text = body.decode("utf-8", "replace")
    return json_body({"error": {"message": f"{note}. The provider said: {text}", "type": "llmguard_retry_budget"}})
