"""OpenTelemetry out: every finished call as a GenAI span and GenAI client metrics (`otel=True`).

`attributes` maps a ledger row to the GenAI semantic conventions (pure, no OpenTelemetry import),
`content` reads prompt and answer text for `otel_content=True`, and `otel` holds the exporter: a
bounded queue the guard appends to and a daemon thread that builds spans through the global
tracer and meter providers. OpenTelemetry itself is imported only when `otel=True`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmguard.telemetry.otel import OtelExporter

INSTALL_HINT = "pip install 'llmguard[otel]'"


def exporter_for(settings: Any, current: OtelExporter | None = None) -> OtelExporter | None:
    """The exporter `settings` ask for: the running one kept (its content setting updated), a new
    one started, or None (the running one closed). ConfigError when OpenTelemetry is missing."""
    if not settings.otel:
        if current is not None:
            current.close()
        return None
    if current is not None:
        current.content = settings.otel_content
        return current
    try:
        from llmguard.telemetry.otel import OtelExporter
    except ImportError as exc:
        from llmguard.config import ConfigError

        raise ConfigError(
            f"llmguard: otel=True exports every call to OpenTelemetry, but the OpenTelemetry API is not "
            f"installed ({exc}). Install it with {INSTALL_HINT}, or set otel=False."
        ) from None
    return OtelExporter(content=settings.otel_content)
