"""`SimProvider`: the simulated OpenAI-, Anthropic- and Gemini-compatible provider.

It composes the pieces: the HTTP server (`server.py`), the shared state and steps of every call
(`core.py`), one route object per API (`openai/routes.py`, `openai/responses.py`,
`anthropic/routes.py`, `gemini/routes.py`) and the simulator's own `/_sim/*` endpoints (`control.py`). Prompt
tokens are counted with tiktoken (`counting.py`) and bills priced with genai-prices' own
`calc_price` (`billing.py`): nothing here imports the rest of llmguard, so the simulator is an
independent oracle for the guard's meter.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from llmguard.sim import announce
from llmguard.sim.anthropic.routes import AnthropicRoutes
from llmguard.sim.buckets import RateLimiter
from llmguard.sim.control import ControlRoutes, not_found
from llmguard.sim.core import Reply, Routes, SimCore
from llmguard.sim.faults import FaultPlan, Faults
from llmguard.sim.gemini.routes import GeminiRoutes
from llmguard.sim.openai.responses import ResponsesRoutes
from llmguard.sim.openai.routes import OpenAIRoutes
from llmguard.sim.server import HTTPServer, Request, Response

_UNSET: Any = object()


class SimProvider:
    """A real HTTP server on 127.0.0.1 that the official SDKs cannot tell from the real APIs.

    Use as a context manager; `base_url` is the server root: OpenAI clients use `base_url + "/v1"`,
    Anthropic clients and google-genai (`http_options={"base_url": ...}`) use `base_url`.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        window_s: float = 60.0,
        latency_ms: float = 0.0,
        per_token_ms: float = 0.0,
        faults: Faults = None,
        port: int = 0,
        limits: dict[str, dict[str, int | None]] | None = None,
        default_max_tokens: int = 4096,
        seed: int = 0,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._port_wanted = port
        self._core = SimCore(
            RateLimiter(rpm, tpm, window_s, limits),
            FaultPlan(faults, seed),
            latency_ms,
            per_token_ms,
            default_max_tokens,
            seed,
        )
        self._stats = self._core.stats
        self._server: HTTPServer | None = None
        self._anthropic = AnthropicRoutes(self._core)
        self._apis: list[Routes] = [
            OpenAIRoutes(self._core),
            ResponsesRoutes(self._core),
            self._anthropic,
            GeminiRoutes(self._core),
        ]
        self._control = ControlRoutes(self)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SimProvider:
        if self._server is None:
            self._server = HTTPServer(
                self._handle,
                self._port_wanted,
                on_timing=self._stats.timing,
                on_error=self._stats.internal_error,
                on_connection=self._stats.connected,
            )
            self._server.start()
            self._announce()
        return self

    def stop(self) -> None:
        """Idempotent; returns promptly even with hung or streaming requests in flight."""
        server, self._server = self._server, None
        if server is not None:
            announce.withdraw(server.port)
            server.stop()

    @property
    def identity(self) -> str:
        """What decides this simulator's answers besides the request (not its port): see `announce.py`."""
        return announce.identity(self._core.seed, self._core.default_max_tokens)

    def _announce(self) -> None:
        if self._server is not None:
            announce.announce(self._server.port, self.identity)

    def __enter__(self) -> SimProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SimProvider is not running: call start() or use it in a with block")
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    # -- control ---------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """A deep-copied snapshot; see `SimStats.snapshot`."""
        return self._stats.snapshot()

    def cost_decimal(self) -> Decimal:
        """The exact total bill (priced models only), for comparisons without float rounding."""
        return self._stats.cost_decimal()

    def reset_stats(self) -> None:
        self._stats.reset()

    def reset_cache(self) -> None:
        """Forget every prompt prefix seen so far."""
        for api in self._apis:
            api.reset_cache()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Replace the clock prompt-cache lifetimes are measured on (tests step past 5 min / 1 h)."""
        self._anthropic.cache.clock = clock

    @property
    def seed(self) -> int:
        return self._core.seed

    @property
    def latency_ms(self) -> float:
        return self._core.latency_ms

    @property
    def per_token_ms(self) -> float:
        return self._core.per_token_ms

    @property
    def default_max_tokens(self) -> int:
        return self._core.default_max_tokens

    def configure(
        self,
        rpm: int | None = _UNSET,
        tpm: int | None = _UNSET,
        window_s: float = _UNSET,
        latency_ms: float = _UNSET,
        per_token_ms: float = _UNSET,
        faults: Faults = _UNSET,
        limits: dict[str, dict[str, int | None]] | None = _UNSET,
        default_max_tokens: int = _UNSET,
        fault_retry_after_s: float | None = _UNSET,
    ) -> None:
        """Change a running server; only the given arguments change. New limits start full.
        `fault_retry_after_s` sets the `retry-after` of fault 429s (None: 50 ms, as by default)."""
        core = self._core
        if fault_retry_after_s is not _UNSET:
            if fault_retry_after_s is not None and not fault_retry_after_s >= 0:
                raise ValueError(f"fault_retry_after_s must be >= 0 seconds or None, got {fault_retry_after_s!r}")
            core.fault_retry_after_s = fault_retry_after_s
        if latency_ms is not _UNSET:
            core.latency_ms = float(latency_ms)
        if per_token_ms is not _UNSET:
            core.per_token_ms = float(per_token_ms)
        if default_max_tokens is not _UNSET:
            core.default_max_tokens = int(default_max_tokens)
            self._announce()  # its answers change with it: so does its identity
        if faults is not _UNSET:
            core.faults = FaultPlan(faults, core.seed)
        if any(v is not _UNSET for v in (rpm, tpm, window_s, limits)):
            lim = core.limiter
            window = lim.window_s if window_s is _UNSET else float(window_s)
            if window <= 0:
                raise ValueError(f"window_s must be positive, got {window}")
            lim.reconfigure(
                lim.rpm if rpm is _UNSET else rpm,
                lim.tpm if tpm is _UNSET else tpm,
                window,
                lim.limits if limits is _UNSET else limits,
            )

    # -- dispatch --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        control = self._control.match(request.method, path)
        if control is not None:
            return control(request)
        self._stats.received()
        try:
            response = self._route(request.method, path)(request)
        except Reply as reply:  # a 400, a fault or a 429: the call ends early
            response = reply.response
        if response.action == "send":
            self._stats.responded(response.status)
        return response

    def _route(self, method: str, path: str) -> Callable[[Request], Response]:
        for api in self._apis:
            route = api.match(method, path)
            if route is not None:
                return route
        return not_found
