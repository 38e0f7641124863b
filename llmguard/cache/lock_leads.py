"""Across processes: one leader per cache key, held as a byte-range lock on one shared file.

Each key maps to one byte of `<home>/inflight/leads.lock`; the leader holds an open-file-description
lock (Linux `F_OFD_SETLK`) on that byte until its answer is stored. Why locks rather than marker
files: creating a file costs 0.2-0.5 ms on an ext4 home here (12 us on tmpfs) and sat on every cache
miss; a lock is one `fcntl` on a file opened once, ~2 us. And the kernel drops a lock when its holder
dies, so a `kill -9`'d leader blocks nobody (a marker blocked its key until its TTL).

Open-file-description locks (not `lockf`/POSIX record locks) because POSIX locks belong to the
process: a second guard in the same process would share them, and closing any descriptor of the
file would silently drop every lock the process holds. OFD locks belong to this object's descriptor.
Where they are not available (macOS, Windows) `open_leads` picks the file markers of
`markers.py`; on a filesystem that refuses them (some network and FUSE mounts) a LockLeads hands
every question to file markers from its first use on.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: file markers only
    fcntl = None  # type: ignore[assignment]

from llmguard.cache.markers import MarkerLeads, unusable_folder
from llmguard.ledger.connection import ensure_home
from llmguard.ledger.journal import make_private_dir

LOCK_FILENAME = "leads.lock"

# struct flock on 64-bit Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
# (l_pid must be 0 for OFD locks); 32 bytes with its padding. No library wraps F_OFD_SETLK.
_FLOCK = struct.Struct("hhxxxxqqixxxx")
_OFFSET_MASK = (1 << 62) - 1  # far below off_t's maximum, so start + length never overflows
_F_OFD_SETLK: int = getattr(fcntl, "F_OFD_SETLK", -1)
_F_OFD_GETLK: int = getattr(fcntl, "F_OFD_GETLK", -1)


def supported() -> bool:
    """Whether this platform has open-file-description locks with the layout above."""
    return sys.platform.startswith("linux") and _F_OFD_SETLK != -1 and struct.calcsize("l") == 8 and _FLOCK.size == 32


def _offset(key: str) -> int:
    """The byte of the lock file that stands for `key` (62 bits of its hash: collisions are moot)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") & _OFFSET_MASK


class LockLeads:
    """Leader election per key among processes sharing a directory, by byte-range locks.

    The same methods as the file markers (`try_lead`, `renew`, `release`, `is_led`, `close`), so
    the cache layer does not know which it has. `ttl_s` is accepted and unused: a lock lasts as
    long as its holder, and ends with it. A leader that is alive but stuck is outwaited by its
    followers' own deadline (`dedup_wait_s`), after which they send their own calls.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd: a forked child opens its own
        self._mine: dict[str, int] = {}  # key -> offset we hold
        self.error: str | None = None
        self.fallback: MarkerLeads | None = None  # set once the filesystem refused a lock

    def _descriptor(self) -> int | None:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        if self.error is not None or self.fallback is not None:
            return None
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                return self._fd
            if self._fd is not None:  # forked: the inherited descriptor shares the parent's locks
                # closing our copy leaves them with the parent (an OFD lock ends with its last descriptor)
                os.close(self._fd)
                self._fd, self._mine = None, {}
            try:
                ensure_home(self.directory.parent)
                make_private_dir(self.directory)
                fd = os.open(self.directory / LOCK_FILENAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                self.error = unusable_folder(self.directory, exc, stacklevel=5)
                return None
            try:  # a filesystem may refuse OFD locks (some network and FUSE mounts)
                fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, _OFFSET_MASK, 1, 0))
                fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, _OFFSET_MASK, 1, 0))
            except (BlockingIOError, PermissionError):
                pass  # another process is probing the same byte this instant: locks work
            except OSError:
                os.close(fd)
                self.fallback = MarkerLeads(self.directory)
                return None
            self._fd, self._pid = fd, os.getpid()
            return fd

    def try_lead(self, key: str, ttl_s: float = 0.0) -> bool:
        """True if this object now leads `key` (or locks cannot be used); False if another does."""
        fd = self._descriptor()
        if fd is None:
            return self.fallback.try_lead(key, ttl_s) if self.fallback is not None else True
        offset = _offset(key)
        try:
            fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
        except (BlockingIOError, PermissionError):
            return False  # EAGAIN / EACCES: another descriptor holds it
        except OSError:
            return True  # cannot tell: send our own call rather than wait blind
        self._mine[key] = offset
        return True

    def renew(self, key: str, ttl_s: float = 0.0) -> bool:
        """A lock needs no renewing: True while we hold `key`."""
        if self.fallback is not None:
            return self.fallback.renew(key, ttl_s)
        return key in self._mine and self._pid == os.getpid()

    def release(self, key: str) -> None:
        """Let go of `key` if we hold it (a follower's release does nothing)."""
        if self.fallback is not None:
            self.fallback.release(key)
            return
        offset = self._mine.pop(key, None)
        if offset is None or self._fd is None or self._pid != os.getpid():
            return
        try:
            fcntl.fcntl(self._fd, _F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, offset, 1, 0))
        except OSError:
            pass  # the descriptor is gone: so is the lock

    def is_led(self, key: str) -> bool:
        """Whether some other descriptor holds `key` (asked without taking it)."""
        if key in self._mine:
            return True
        fd = self._descriptor()
        if fd is None:
            return self.fallback.is_led(key) if self.fallback is not None else False
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, _offset(key), 1, 0)
        try:
            answer = fcntl.fcntl(fd, _F_OFD_GETLK, probe)
        except OSError:
            return False
        return bool(_FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)

    def close(self) -> None:
        """Close the descriptor, which ends every lead it holds."""
        with self._lock:
            fd, self._fd = self._fd, None
            self._mine = {}
            if fd is not None and self._pid == os.getpid():
                os.close(fd)


def open_leads(directory: Path) -> LockLeads | MarkerLeads:
    """The cross-process leader election for `directory`: locks where the platform has them."""
    return LockLeads(directory) if supported() else MarkerLeads(directory)
