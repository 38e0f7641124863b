"""Where an answer comes from, as the cache key names it: the request's URL, or a simulator's identity.

The whole URL keys the cache (a path-routed gateway, an Azure deployment or another host is another
source of answers), except for `llmguard.sim`: it picks a free port each time it starts, so keying
by port would make every kernel's simulator a new provider and re-send every call. A running
simulator announces `{"<port>": "<identity>"}` in `LLMGUARD_SIM_ENDPOINTS` (`llmguard/sim/announce.py`
writes it; the simulator imports nothing of llmguard, so the environment is the contract). A request
to an announced port on a loopback host is keyed by that identity and its path; anything else, a
loopback server that announced nothing included, by its URL as before.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from urllib.parse import urlsplit

SIM_ENDPOINTS_ENV = "LLMGUARD_SIM_ENDPOINTS"
_LOOPBACK = frozenset(("127.0.0.1", "localhost", "::1"))


@lru_cache(maxsize=8)
def _announced(raw: str) -> dict[str, str]:
    """{port: identity} from the variable's text (parsed once per distinct value)."""
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(port): who for port, who in found.items() if isinstance(who, str) and who}


def simulator_identity(url: str) -> str | None:
    """The identity of the simulator `url` points at, or None if it points elsewhere."""
    raw = os.environ.get(SIM_ENDPOINTS_ENV)
    if not raw:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK or port is None:
        return None
    return _announced(raw).get(str(port))


def answer_origin(url: str) -> str:
    """`url` as the cache key takes it: a simulator's scheme, host and port become its identity."""
    who = simulator_identity(url)
    if who is None:
        return url
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"llmguard-sim:{who}{rest}"
