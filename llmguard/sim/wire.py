"""What every wire-format module shares: compact JSON, JSON string quoting for the per-token
stream templates, the SSE content type, and random letter-and-digit ids."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from typing import Any

dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode
quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
EVENT_STREAM = "text/event-stream; charset=utf-8"
_ID_CHARS = string.ascii_letters + string.digits


def alnum(k: int) -> str:
    """`k` random letters and digits, the tail of tool-call ids on both providers' wires."""
    return "".join(random.choices(_ID_CHARS, k=k))
