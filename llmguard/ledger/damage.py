"""Damaged ledgers: telling damage from trouble, and moving a damaged file aside safely.

A ledger SQLite finds damaged (not a database, a malformed page) is moved aside to
`ledger.sqlite3.corrupt-<time>` with its -wal and -shm, and a fresh one is started in its place;
never while another process still has it open (that process's close would delete the fresh
ledger's -wal and -shm, which SQLite finds by name). The tests here look at the file without
letting SQLite touch its -wal, and one process at a time decides (`home_lock`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no locks to test; a damaged ledger is moved aside right away
    fcntl = None  # type: ignore[assignment]

_DAMAGE_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_damaged(exc: BaseException) -> bool:
    """SQLite found the file damaged (as opposed to busy, full, read-only or missing)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGE_CODES
    return "not a database" in str(exc) or "malformed" in str(exc)


class NotADatabase(sqlite3.DatabaseError):
    """The file does not start as an SQLite database does (found before SQLite opens it)."""


_MAGIC = b"SQLite format 3\x00"


def not_a_database(path: Path) -> bool:
    """Looked at before SQLite opens the file: a connection to it would delete its -wal and -shm on
    closing, and those belong with the damaged file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_MAGIC))
    except OSError:
        return False
    return bool(head) and head != _MAGIC


def still_damaged(path: Path) -> bool:
    """A fresh look at the file: read-only, so it neither checkpoints into it nor deletes its -wal."""
    if not path.exists():
        return False
    if not_a_database(path):
        return True
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            found = conn.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return is_damaged(exc)
    return found is None or found[0] != "ok"


def open_elsewhere(path: Path) -> bool:
    """Another process has the ledger open: every connection to a WAL database holds a read lock on
    byte 128 of its -shm file (SQLite's "DMS" lock) as long as it is open."""
    if fcntl is None:
        return False
    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except OSError:
        return False  # no -shm: nobody has it open in WAL mode
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def move_aside(path: Path) -> tuple[Path, list[str]]:
    """`ledger.sqlite3` -> `ledger.sqlite3.corrupt-<time>`, its -wal and -shm beside it (moved first,
    so a fresh ledger never meets the old one's WAL); and which of those came along."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(os.path.lexists(f"{aside}{s}") for s in ("", "-wal", "-shm", "-journal")):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
    moved = []
    for suffix in ("-wal", "-shm", "-journal", ""):
        try:
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            moved.append(suffix)
        except FileNotFoundError:
            pass
    return aside, [suffix for suffix in moved if suffix]


def file_identity(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (another process may have moved the damaged one aside already)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """One process at a time decides about a damaged ledger (flock on the folder itself)."""
    fd = -1
    if fcntl is not None:
        try:
            fd = os.open(home, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd >= 0:
                os.close(fd)
            fd = -1
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)
