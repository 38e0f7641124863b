"""The diskcache handle under the response cache: opened lazily, reset when its database is damaged.

A damaged file is wiped and started afresh (a cache holds nothing that cannot be fetched again);
a busy or unreachable one only makes lookups miss. Each kind of trouble warns once per folder.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

from llmguard.ledger.connection import ensure_home
from llmguard.ledger.journal import create_private_file, make_private_dir


def is_broken_db(exc: BaseException) -> bool:
    """A damaged database file (reset it), as opposed to a busy or unreachable one (a miss)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _wipe(directory: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove a diskcache directory's database and value files (not the folders in `keep`)."""
    for child in directory.iterdir():
        if child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            try:
                child.unlink()
            except OSError:
                pass


class DiskStore:
    """One lazily opened diskcache.Cache that resets itself when its database file is damaged."""

    def __init__(self, directory: Path, keep: tuple[str, ...] = (), **options: Any) -> None:
        self.directory = directory
        self._keep = keep
        self._options = options
        self._cache: Any = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def open(self) -> Any:
        cache = self._cache
        if cache is not None or self.error is not None:
            return cache
        with self._lock:
            if self._cache is None and self.error is None:
                self._cache = self._connect()
            return self._cache

    def _connect(self) -> Any:
        import diskcache

        for attempt in range(2):
            try:
                ensure_home(self.directory.parent)
                make_private_dir(self.directory)  # an existing folder keeps its mode
                # 0600 whatever the umask (diskcache lets SQLite make it 0644); its -wal and -shm follow it
                create_private_file(self.directory / diskcache.core.DBNAME)
                return diskcache.Cache(str(self.directory), **self._options)
            except sqlite3.DatabaseError as exc:
                if attempt == 0 and is_broken_db(exc):
                    _wipe(self.directory, self._keep)
                    self._warn_reset(exc)
                    continue
                self._disable(exc)
                return None
            except (OSError, sqlite3.Error) as exc:
                self._disable(exc)
                return None
        return None

    def _disable(self, exc: BaseException) -> None:
        self.error = f"cannot open the cache at {self.directory} ({exc})"
        warn_once(
            "open",
            self.directory,
            f"{self.error}; calls go to the provider uncached. Point LLMGUARD_HOME at a writable folder.",
        )

    def reset(self, exc: BaseException) -> None:
        """Drop a damaged database and start empty (the next `open` reconnects)."""
        with self._lock:
            cache, self._cache = self._cache, None
            if cache is not None:
                try:
                    cache.close()
                except Exception:
                    pass
            if self.directory.exists():
                _wipe(self.directory, self._keep)
        self._warn_reset(exc)

    def _warn_reset(self, exc: BaseException) -> None:
        warn_once(
            "reset",
            self.directory,
            f"the cache database at {self.directory} was damaged ({exc}); "
            "it was reset to empty, and answers are fetched from the provider again",
        )

    def close(self) -> None:
        with self._lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()


_warned: set[tuple[str, str]] = set()


def warn_once(kind: str, directory: Path, message: str) -> None:
    """Warn once per kind of trouble and folder: a broken disk must not flood a notebook."""
    if (kind, str(directory)) in _warned:
        return
    _warned.add((kind, str(directory)))
    warnings.warn(f"llmguard: {message}", RuntimeWarning, stacklevel=4)
