"""Across processes: one leader per cache key among processes sharing LLMGUARD_HOME.

The in-process leader (see `inflight.py`) calls `try_lead(key, ttl_s)` on the cross-process
`Leads` (`lock_leads.open_leads`: byte-range locks on Linux, the marker files below elsewhere). If
another process leads, it polls with `poll_leader` (the other leader stores its answer in the
response cache, then lets go of its lead), sleeping `FollowerPoll.next_delay()` between polls,
which the sans-io pipeline turns into `Sleep` actions. A crashed leader's lock ends with it; a
crashed leader's marker file expires after `ttl_s`.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from llmguard.ledger.connection import ensure_home
from llmguard.ledger.journal import make_private_dir

if TYPE_CHECKING:
    from llmguard.cache.entry import CachedResponse
    from llmguard.cache.store import ResponseCache

INFLIGHT_DIRNAME = "inflight"
_SQLITE_TIMEOUT_S = 2.0


_WRITING_GRACE_S = 5.0
# A marker this close to expiry may be taken over by another process any moment: read it back first.
_TAKEOVER_MARGIN_S = 1.0


def unusable_folder(directory: Path, exc: OSError, stacklevel: int) -> str:
    """Warn once that `directory` cannot hold leads (every caller then leads); the reason, kept."""
    error = f"cannot use {directory} ({exc})"
    warnings.warn(
        f"llmguard: {error}; identical calls in other processes are not deduplicated",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return error


class MarkerLeads:
    """Leader election per key among processes sharing a directory (`<home>/inflight`), by files.

    The fallback where open-file-description locks are missing (`lock_leads.py` is the default).

    A marker is a small file created with O_CREAT|O_EXCL, which exactly one process wins; it holds
    its expiry and an owner token, so a leader that crashed blocks the others for at most `ttl_s`
    and only the owner removes its marker. Files rather than a SQLite table because this sits on
    every cache miss: a create costs ~12 us here, a diskcache `add` ~55 us. If the directory cannot
    be used, every caller leads (no deduplication, never a blocked call).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._mine: dict[str, tuple[str, float]] = {}  # key -> (our token, when our marker expires)
        # Tokens are this process's id, a nonce drawn once and a counter: unique across processes
        # without an os.urandom call per miss (uuid4 was two syscalls on every cache miss).
        self._nonce = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._serial = itertools.count()
        self._ready = False
        self.error: str | None = None

    def _dir(self) -> Path | None:
        if self._ready:
            return self.directory
        if self.error is not None:
            return None
        with self._lock:
            try:
                ensure_home(self.directory.parent)
                make_private_dir(self.directory)  # 0700 whatever the umask; an existing folder keeps its mode
                self._ready = True
            except OSError as exc:
                self.error = unusable_folder(self.directory, exc, stacklevel=4)
                return None
        return self.directory

    @staticmethod
    def _read(path: Path) -> tuple[float, str] | None:
        try:
            text = path.read_text()
            expires, token = text.split(" ", 1)
            return float(expires), token
        except (OSError, ValueError):
            return None

    @staticmethod
    def _being_written(path: Path) -> bool:
        """An unreadable marker that is seconds old is one its creator is still writing."""
        try:
            return time.time() - path.stat().st_mtime < _WRITING_GRACE_S
        except OSError:
            return False

    def _create(self, path: Path, ttl_s: float) -> tuple[str, float] | None:
        """Our marker at `path` (token, expiry), or None if another process's is there."""
        token = f"{self._nonce}:{next(self._serial)}"
        expires = time.time() + ttl_s
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return None
        try:  # raw os.write: a file object around a 40-byte write cost more than the write
            os.write(fd, f"{expires} {token}".encode())
        finally:
            os.close(fd)
        return token, expires

    def try_lead(self, key: str, ttl_s: float) -> bool:
        """True if this process now leads `key` (or markers cannot be used); False if another does."""
        directory = self._dir()
        if directory is None:
            return True
        path = directory / key
        try:
            token = self._create(path, ttl_s)
            if token is None:
                seen = self._read(path)
                if seen is not None and seen[0] > time.time() or seen is None and self._being_written(path):
                    return False
                # expired (or unreadable): take it over; a rename has one winner
                tomb = directory / f"{key}.{uuid.uuid4().hex}.expired"
                try:
                    os.rename(path, tomb)
                except FileNotFoundError:
                    pass
                else:
                    taken = self._read(tomb)
                    if seen is not None and taken != seen and taken is not None and taken[0] > time.time():
                        os.rename(tomb, path)  # we moved a fresh marker someone just made: put it back
                        return False
                    tomb.unlink(missing_ok=True)
                token = self._create(path, ttl_s)
                if token is None:
                    return False
        except OSError:
            return True  # cannot tell: send our own call rather than wait blind
        self._mine[key] = token
        return True

    def renew(self, key: str, ttl_s: float) -> bool:
        """Extend our marker (a long stream); False if it is not ours any more."""
        directory = self._dir()
        mine = self._mine.get(key)
        if directory is None or mine is None:
            return False
        token = mine[0]
        path = directory / key
        seen = self._read(path)
        if seen is None or seen[1] != token or seen[0] <= time.time():
            return False
        temp = directory / f"{key}.{uuid.uuid4().hex}.renew"
        expires = time.time() + ttl_s
        try:
            temp.write_text(f"{expires} {token}")
            os.replace(temp, path)
        except OSError:
            return False
        self._mine[key] = (token, expires)
        return True

    def release(self, key: str) -> None:
        """Remove our marker for `key` (someone else's, after ours expired, stays)."""
        mine = self._mine.pop(key, None)
        directory = self._dir()
        if directory is None or mine is None:
            return
        token, expires = mine
        path = directory / key
        if time.time() < expires - _TAKEOVER_MARGIN_S:
            # Others take a marker over only once it has expired, so an unexpired one is still ours:
            # remove it without reading it back (one syscall instead of four on every miss).
            try:
                os.unlink(path)
            except OSError:
                pass
            return
        seen = self._read(path)
        if seen is not None and seen[1] == token:
            path.unlink(missing_ok=True)

    def is_led(self, key: str) -> bool:
        """Whether some process holds an unexpired marker for `key`."""
        directory = self._dir()
        if directory is None:
            return False
        path = directory / key
        seen = self._read(path)
        return seen[0] > time.time() if seen is not None else self._being_written(path)

    def close(self) -> None:
        """Markers are files: nothing to close. Kept for symmetry with the response cache."""


POLL_FIRST_S = 0.002
POLL_GROWTH = 1.5
POLL_MAX_S = 0.05


def next_poll_delay(attempt: int) -> float:
    """Seconds before poll number `attempt` (0-based): quick at first, then every 50 ms."""
    return min(POLL_MAX_S, POLL_FIRST_S * POLL_GROWTH ** min(max(attempt, 0), 32))


class FollowerPoll:
    """A follower's polling schedule up to a deadline (time.monotonic); sans-io, it never sleeps."""

    __slots__ = ("deadline", "attempt")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.attempt = 0

    def next_delay(self, now: float | None = None) -> float | None:
        """Seconds to sleep before the next poll, or None once the deadline has passed."""
        left = self.deadline - (time.monotonic() if now is None else now)
        if left <= 0:
            return None
        delay = min(next_poll_delay(self.attempt), left)
        self.attempt += 1
        return delay


HIT, GONE, WAITING = "hit", "gone", "waiting"


class Leads(Protocol):
    """What the cache layer asks of a cross-process leader election (locks or marker files)."""

    def try_lead(self, key: str, ttl_s: float) -> bool: ...
    def renew(self, key: str, ttl_s: float) -> bool: ...
    def release(self, key: str) -> None: ...
    def is_led(self, key: str) -> bool: ...
    def close(self) -> None: ...


class Poll(NamedTuple):
    state: str  # HIT: the leader's answer is stored; GONE: no leader and no answer; WAITING
    response: CachedResponse | None = None


def poll_leader(cache: ResponseCache, inflight: Leads, key: str, since: float | None = None) -> Poll:
    """One non-blocking look: is the other process's answer there, is it still running?

    The marker is read before the cache: the leader stores first and releases after, so "no
    marker" followed by "no answer" means the leader ended without one. `since` ignores answers
    stored before it (a `refresh` follower wants the new answer, not the one it is replacing).
    """
    led = inflight.is_led(key)
    response = cache.get(key)
    if response is not None and (since is None or response.created_at >= since):
        return Poll(HIT, response)
    return Poll(WAITING) if led else Poll(GONE)
