"""Sampled calls replayed in a notebook: "Restart & Run All" shows the answers it showed before, free.

A sampled call (temperature > 0 or unset, no seed) is one draw among many, so scripts never cache
it unless `cache_sampled` asks. In a Jupyter kernel, re-running a cell is re-reading it: there the
cache keeps each draw under the request's key plus the notebook and the call's ordinal among the
identical requests of its cell run (`SampleOrdinals`), so two identical sampled calls in one cell
stay two samples, and a re-run gets the same two back. Counting only identical requests keeps the
ordinal stable when other calls are added to the cell or a thread pool answers out of order.
`tag(cache="refresh")` (and `%llmguard fresh`, `%%llm --fresh`) draws again and stores the new draw.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Hashable


def in_notebook_kernel() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code), without importing IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return getattr(shell, "kernel", None) is not None


def replay_key(base_key: str, notebook: object, ordinal: int) -> str:
    """The key of draw `ordinal` of the request keyed `base_key`, as made by `notebook`."""
    digest = hashlib.sha256(b"llmguard replay 1\n")
    digest.update(f"{base_key}\n{'' if notebook is None else notebook}\n{ordinal}".encode())
    return digest.hexdigest()


class SampleOrdinals:
    """How many identical sampled requests each cell run has made so far, for the newest cell runs.

    A scope is one cell run (the notebook and the cell's execution count: a re-run is a new scope
    that starts from draw 0 again). Old scopes are forgotten beyond `max_scopes`, so a long session
    keeps a bounded map; a thread of a forgotten cell run starts its count again.
    """

    def __init__(self, max_scopes: int = 256) -> None:
        self._lock = threading.Lock()
        self._scopes: OrderedDict[Hashable, dict[str, int]] = OrderedDict()
        self._max = max_scopes

    def next(self, scope: Hashable, base_key: str) -> int:
        """The ordinal of this request in `scope` (0 for its first ask), counting it."""
        with self._lock:
            counts = self._scopes.get(scope)
            if counts is None:
                counts = self._scopes[scope] = {}
                while len(self._scopes) > self._max:
                    self._scopes.popitem(last=False)
            else:
                self._scopes.move_to_end(scope)
            ordinal = counts.get(base_key, 0)
            counts[base_key] = ordinal + 1
            return ordinal
