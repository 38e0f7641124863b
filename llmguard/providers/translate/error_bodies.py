"""Error bodies between the providers, message kept: the error type is mapped (and refined by the
HTTP status when the body is not a JSON error), so the caller's SDK raises the matching exception."""

from __future__ import annotations

from typing import Any

from llmguard.providers.translate.wire import compact_json, parse_json

_ANTHROPIC_TO_OPENAI_ERROR = {  # Anthropic error type → (OpenAI type, code)
    "invalid_request_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", None),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}
_OPENAI_CODE_TO_ANTHROPIC = {
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "invalid_api_key": "authentication_error",
    "model_not_found": "not_found_error",
}
_STATUS_TO_ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _error_of(body: bytes | str) -> tuple[dict[str, Any], str | None]:
    """(the body's `error` object, or {}; the body's text when it is not a JSON error)."""
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data["error"], None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return {}, text.strip()[:500]


def _upstream(status: int | None, text: str | None) -> str:
    where = f" (HTTP {status})" if status is not None else ""
    return f"the upstream provider answered with an error{where}" + (f": {text}" if text else "")


def openai_error_dict(error: dict[str, Any], status: int | None, text: str | None = None) -> dict[str, Any]:
    kind = error.get("type")
    default = ("server_error", None) if status is not None and status >= 500 else ("invalid_request_error", None)
    openai_type, code = _ANTHROPIC_TO_OPENAI_ERROR.get(kind, default) if isinstance(kind, str) else default
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = _upstream(status, text)
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code}}


def anthropic_error_dict(error: dict[str, Any], status: int | None, text: str | None = None) -> dict[str, Any]:
    code, kind = error.get("code"), error.get("type")
    anthropic_type = _OPENAI_CODE_TO_ANTHROPIC.get(code) if isinstance(code, str) else None
    if anthropic_type is None and kind in ("requests", "tokens"):
        anthropic_type = "rate_limit_error"
    if anthropic_type is None and kind == "insufficient_quota":
        anthropic_type = "billing_error"
    if anthropic_type is None and status is not None:
        anthropic_type = _STATUS_TO_ANTHROPIC.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if anthropic_type is None:
        anthropic_type = "api_error" if kind == "server_error" else "invalid_request_error"
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = _upstream(status, text)
    return {"type": "error", "error": {"type": anthropic_type, "message": message}}


def anthropic_error_to_openai(body: bytes, status: int | None = None) -> bytes:
    """An Anthropic error body as an OpenAI one, message kept (`status` refines the type of a body
    that is not a JSON error)."""
    error, text = _error_of(body)
    return compact_json(openai_error_dict(error, status, text)).encode()


def openai_error_to_anthropic(body: bytes, status: int | None = None) -> bytes:
    """An OpenAI error body as an Anthropic one, message kept (`status` refines the type)."""
    error, text = _error_of(body)
    return compact_json(anthropic_error_dict(error, status, text)).encode()
