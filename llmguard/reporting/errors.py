"""The one error a report request raises, so the CLI and the magics can show its message and stop."""

from __future__ import annotations


class ReportError(ValueError):
    """A report request that cannot be answered; the message says what to change."""
