"""OpenAI's error answers as the routes raise them: `BadRequest` (a 400 the real API gives), and the
wording of the messages several parameters share, written once."""

from __future__ import annotations

from typing import Any

from llmguard.sim.core import Reply, json_response, openai_ids
from llmguard.sim.openai import wire
from llmguard.sim.server import Response

BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    return json_response(status, wire.error(message, "invalid_request_error", param, code), openai_ids())


class BadRequest(Reply):
    """A request the real API answers with a 400 `invalid_request_error`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(error_response(400, message, param, code))


def missing(param: str) -> BadRequest:
    return BadRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def invalid_type(param: str, expected: str, got: str) -> BadRequest:
    """`expected` and `got` as the API words them: "an integer", "a string", "null", "list"..."""
    return BadRequest(f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param, "invalid_type")


def invalid_value(param: str, value: Any, why: str) -> BadRequest:
    """`why` says what is allowed: "Supported values are: 'text' and 'json_schema'." and the like."""
    return BadRequest(f"Invalid value: {value!r}. {why}", param, "invalid_value")
