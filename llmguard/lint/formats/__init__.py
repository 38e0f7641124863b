"""Output formats: text (rich), json, sarif (2.1.0) and github (workflow annotations)."""

from __future__ import annotations

FORMATS = ("text", "json", "sarif", "github")
