"""The running simulators of this process, announced in the environment by port and identity.

A simulator takes a free port each time it starts, so a cache keyed by URL would treat every
kernel's simulator as a new provider and re-send every call. Its answers depend only on the request
and on its identity (the seed, the default output bound and the version of its answer generator),
so `SimProvider.start()` announces `{"<port>": "<identity>"}` in `LLMGUARD_SIM_ENDPOINTS` and
`stop()` withdraws it; llmguard's cache (`llmguard/cache/origin.py`) keys an answer from an
announced loopback port by the identity instead. The environment, not an import, is the channel:
the simulator imports nothing else of llmguard, and child processes that talk to it inherit it.
"""

from __future__ import annotations

import json
import os
import threading

ENDPOINTS_ENV = "LLMGUARD_SIM_ENDPOINTS"
# Bumped whenever the same request would get a different answer (text, usage) from a new release.
ANSWERS_VERSION = 1

_lock = threading.Lock()


def identity(seed: int, default_max_tokens: int) -> str:
    """What, besides the request, decides this simulator's answers."""
    return f"llmguard.sim/{ANSWERS_VERSION} seed={seed} default_max_tokens={default_max_tokens}"


def _announced() -> dict[str, str]:
    try:
        found = json.loads(os.environ.get(ENDPOINTS_ENV) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _write(endpoints: dict[str, str]) -> None:
    if endpoints:
        os.environ[ENDPOINTS_ENV] = json.dumps(endpoints, sort_keys=True, separators=(",", ":"))
    else:
        os.environ.pop(ENDPOINTS_ENV, None)


def announce(port: int, who: str) -> None:
    """Say that 127.0.0.1:`port` is a simulator whose answers are decided by `who`."""
    with _lock:
        endpoints = _announced()
        endpoints[str(port)] = who
        _write(endpoints)


def withdraw(port: int) -> None:
    """The simulator on `port` stopped: its port may serve anything next."""
    with _lock:
        endpoints = _announced()
        if endpoints.pop(str(port), None) is not None:
            _write(endpoints)
