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


def json_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or a ProviderParseError saying what is wrong."""
    import json

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderParseError(f"request body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProviderParseError("request body is not a JSON object")
    return data


def request_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object with a model (in the body, as OpenAI and Anthropic put it)."""
    data = json_object(body)
    if not isinstance(data.get("model"), str):
        raise ProviderParseError("request has no model")
    return data


def json_body(data: dict[str, Any]) -> bytes:
    """Compact JSON, as the SDKs send it."""
    import json

    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def body_with_changes(raw: bytes, original: dict[str, Any], changes: dict[str, Any]) -> bytes:
    """`raw` (the JSON object `original`) with top-level `changes` applied.

    When every changed key is new to the body (the usage option on a stream, a default max
    tokens), the new members are spliced in front of the SDK's own bytes instead of re-encoding the
    whole request: the cost no longer grows with the prompt (re-encoding a 100 KB prompt took
    longer than everything else before the first chunk). Otherwise the body is encoded afresh.
    """
    start = raw[:1]
    if original and start == b"{" and not any(key in original for key in changes):
        members = json_body(changes)[1:-1]
        return b"{" + members + b"," + raw[1:]
    return json_body({**original, **changes})


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
