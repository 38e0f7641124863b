"""The `process` store: books in this process's memory, so each process has its own budget (the
behaviour before stores existed). Leases never expire here: nobody else could take the money."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from llmguard.store import Grant, SyncRequest
from llmguard.store.books import Book, Lease, apply
from llmguard.store.rates import RateGrant, RateRequest, apply_rates


class ProcessStore:
    kind = "process"
    label = "process (this process only)"
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._books: dict[str, Book] = {}
        self._leases: dict[str, dict[str, Lease]] = {}
        self._rates: dict[str, dict[str, Any]] = {}

    def sync(self, request: SyncRequest) -> Grant:
        with self._lock:
            leases = self._leases.setdefault(request.key, {})
            book, grant = apply(
                self._books.get(request.key), leases, request, time.time(), uuid.uuid4().hex[:12], share=1.0
            )
            self._books[request.key] = book
            return grant

    def sync_rates(self, request: RateRequest) -> RateGrant:
        with self._lock:
            book, grant = apply_rates(self._rates.get(request.key), request, time.time(), uuid.uuid4().hex[:12])
            self._rates[request.key] = book
            return grant

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
