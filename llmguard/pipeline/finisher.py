"""Calls finished from a garbage-collector finalizer, settled on a thread of their own.

A stream the user drops without closing is finished by its `__del__`, which the GC may run at any
allocation — inside a lock the budget, the limiter or the ledger holds at that moment. So the
finalizer only hands the call over here (`queue.SimpleQueue.put` is documented as safe in
`__del__`), and a daemon thread, started on first use and stopped by `close()`, settles it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class Finisher:
    def __init__(self, settle: Callable[[Any, Any], None]) -> None:
        self._settle = settle
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, state: Any, reading: Any) -> None:
        """Hand over one call (from a finalizer: no lock is taken but on the thread's first start)."""
        self._queue.put((state, reading))
        if self._thread is None:
            # threading.Thread.start() takes locks; a finalizer that runs while another thread
            # holds _start_lock only waits for it, never for a lock of its own thread
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="llmguard-finisher", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._settle(*item)
            except Exception:  # a row lost to a bug of ours must not stop the next one
                pass

    def close(self) -> None:
        """Settle every call handed over so far, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=10)
        while True:  # anything put after the thread stopped
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._settle(*item)
