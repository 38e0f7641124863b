"""What every part of `llmguard.sim.structured` shares: the bounds a schema must stay within, the
errors it raises, and the JSON text forms (compact for answers, canonical for comparing values)."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # nesting levels ($ref hops included) before a schema is refused
SOFT_DEPTH = 6  # past this, optional parts are left out and cheap branches are tried first
MAX_STEPS = 20_000  # schema nodes visited per instance, backtracking included
MAX_ITEMS = 256  # largest minItems / minProperties honoured
MAX_STRING = 4096  # largest minLength honoured


class SchemaError(ValueError):
    """A JSON schema the simulator cannot satisfy; the message says why."""


class ToolChoiceError(ValueError):
    """A `tool_choice` naming a tool the request does not define, or of an unknown form."""


class Exhausted(SchemaError):
    """The step budget ran out: never retried with another branch."""


def json_text(value: Any) -> str:
    """The compact JSON text the real APIs send for arguments and structured answers."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """One text per JSON value, for `enum`, `const` and `uniqueItems` comparisons."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
