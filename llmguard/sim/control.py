"""The simulator's own endpoints, outside any provider's API: `GET /_sim/stats`, `POST /_sim/reset`
and `POST /_sim/configure` (a JSON object of `SimProvider.configure` arguments), and the 404 for a
path no simulated API serves, worded as the provider the request looks meant for."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from llmguard.sim.anthropic import wire as anthropic_wire
from llmguard.sim.core import Handler, anthropic_ids, json_response, openai_ids, parse_json
from llmguard.sim.openai import wire as openai_wire
from llmguard.sim.server import Request, Response

if TYPE_CHECKING:
    from llmguard.sim.provider import SimProvider

CONFIGURABLE = frozenset(
    {
        "rpm",
        "tpm",
        "window_s",
        "latency_ms",
        "per_token_ms",
        "faults",
        "limits",
        "default_max_tokens",
        "fault_retry_after_s",
    }
)
_OK = b'{"ok":true}'


class ControlRoutes:
    """The `/_sim/*` routes of one `SimProvider` (they are not counted as API requests)."""

    def __init__(self, sim: SimProvider) -> None:
        self.sim = sim
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/_sim/stats"): self.stats,
            ("POST", "/_sim/reset"): self.reset,
            ("POST", "/_sim/configure"): self.configure,
        }

    def match(self, method: str, path: str) -> Handler | None:
        return self._routes.get((method, path))

    def stats(self, request: Request) -> Response:
        return json_response(200, json.dumps(self.sim.stats).encode(), [])

    def reset(self, request: Request) -> Response:
        self.sim.reset_stats()
        return json_response(200, _OK, [])

    def configure(self, request: Request) -> Response:
        body = parse_json(request)
        if body is None or not set(body) <= CONFIGURABLE:
            message = f"configure takes a JSON object with some of: {', '.join(sorted(CONFIGURABLE))}"
            return json_response(400, openai_wire.error(message), [])
        try:
            self.sim.configure(**body)
        except (TypeError, ValueError) as exc:
            return json_response(400, openai_wire.error(str(exc)), [])
        return json_response(200, _OK, [])


def _is_anthropic(request: Request) -> bool:
    headers = request.headers
    return request.path.startswith("/v1/messages") or "anthropic-version" in headers or "x-api-key" in headers


def not_found(request: Request) -> Response:
    if _is_anthropic(request):
        return json_response(404, anthropic_wire.error("Not Found", "not_found_error"), anthropic_ids())
    message = f"Invalid URL ({request.method} {request.path})"
    return json_response(404, openai_wire.error(message), openai_ids())
