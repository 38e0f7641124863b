"""Whether the cyclic garbage collector is running now, so a response it closes is handed over.

A response dropped in a reference cycle is closed by the collector, which runs at any allocation,
possibly inside a lock llmguard holds. `gc.callbacks` tells us when a collection starts and stops;
a close seen in between only hands the call to the finisher (pipeline/finisher.py). A close from
the user's own code, or from a refcount drop at a line of the user's code, is settled at once.
"""

from __future__ import annotations

import gc
from typing import Any

_collecting = False


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _collecting
    _collecting = phase == "start"


def in_collection() -> bool:
    return _collecting


def watch() -> None:
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def unwatch() -> None:
    global _collecting
    while _on_gc in gc.callbacks:
        gc.callbacks.remove(_on_gc)
    _collecting = False
