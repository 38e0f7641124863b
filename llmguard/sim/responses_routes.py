"""The simulated OpenAI Responses API (`POST /v1/responses`, `GET /v1/responses/{id}`)."""

from __future__ import annotations

from collections.abc import Callable

from llmguard.sim.core import SimCore
from llmguard.sim.server import Request, Response

Handler = Callable[[Request], Response]


class ResponsesRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def match(self, method: str, path: str) -> Handler | None:
        return None

    def reset_cache(self) -> None:
        pass
