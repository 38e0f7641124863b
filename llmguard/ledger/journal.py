"""Per-process journal segments: the durable half of a ledger write.

Why not commit each row to SQLite on the caller's path: in a running process that commit costs
~60 us (six WAL frame writes and six lock calls, with cold caches), most of what the guard may add
to a call. A row copied into a shared memory map of a file survives SIGKILL just as well (the
kernel's page cache holds it, exactly as it would hold an `os.write`), costs no system call (an
`os.write` measured 9 us at the median inside the benchmark), and the ledger moves rows into SQLite
in batches on a writer thread.

A segment is locked (`flock`) by the process writing it for as long as that process lives; the
kernel drops the lock when it dies, however it dies. A segment nobody holds is an orphan: whoever
reads or opens the ledger next ingests it (see `claim_orphans`), skipping rows already there.

Format: a fixed-size file, allocated up front (so a full disk fails here, not as a SIGBUS later),
holding a header record (the column names, so an older segment maps onto a newer schema), then one
record per row, then zeros. A record is a 4-byte little-endian length and the row `marshal`led
(format version 4, stable across the Python versions we support; rows hold only
str/int/float/bool/None). Records of other kinds (step events) are a `marshal`led dict that names
its kind and its own fields (`{"kind": "step", ...}`): call rows stay exactly as they were, so old
segments still ingest, and a reader that knows only rows skips the dicts. The length is stored
after the row, so a process killed mid-copy leaves a zero length: the end. A record cut short (a damaged file) ends the segment too. A row too big for
a segment gets a segment of its own, sized to fit.

Files and folders made here (and by the ledger and cache, through `make_private_dir` and
`create_private_file`) are owner-only whatever the umask; a folder that already exists keeps its
mode (a shared /tmp, or the working directory when LLMGUARD_HOME is empty, is never chmodded).
"""

from __future__ import annotations

import errno
import itertools
import marshal
import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; the ledger commits each row directly instead
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".rows"
_LENGTH = struct.Struct("<I")
_MARSHAL_VERSION = 4
_SEQUENCE = itertools.count(1)
# Room for ~3,500 rows; a full segment is replaced by a fresh one and removed once its rows are
# committed. Rows a segment still holds after their commit are harmless: ingestion skips them.
SEGMENT_BYTES = 1 << 20

supported = fcntl is not None


def journal_dir(home: Path) -> Path:
    return home / "journal"


def make_private_dir(path: Path) -> bool:
    """Make `path` (and missing parents) with mode 0700; True if it was made now.

    Only a folder made here is chmodded (the umask must not loosen or narrow it); one that exists
    is left as it is.
    """
    if path.is_dir():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise  # a file in the way: the caller says it cannot use the folder
        return False  # made by someone else a moment ago
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return True


def create_private_file(path: Path | str) -> bool:
    """Create an empty file with mode 0600 unless one exists; True if it was made now.

    SQLite gives a database's -wal and -shm the database file's mode, so making the file here
    before SQLite opens it makes those owner-only too.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
    except (AttributeError, OSError):  # no fchmod on Windows
        pass
    finally:
        os.close(fd)
    return True


def encode(row: Sequence[Any]) -> bytes:
    return marshal.dumps(tuple(row), _MARSHAL_VERSION)


def encode_kind(kind: str, fields: dict[str, Any]) -> bytes:
    """A record of another kind than a call row: a dict naming its kind and its fields."""
    return marshal.dumps({**fields, "kind": kind}, _MARSHAL_VERSION)


def _allocate(fd: int, size: int) -> None:
    """Real blocks for the whole segment: a full disk fails here, never as a SIGBUS mid-call."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except AttributeError:  # macOS has no posix_fallocate
        pass
    except OSError as exc:  # a filesystem that cannot allocate ahead
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    zeros = bytes(64 << 10)
    for offset in range(0, size, len(zeros)):
        os.pwrite(fd, zeros[: size - offset], offset)


class SegmentFull(Exception):
    pass


class Segment:
    """One open, locked, memory-mapped segment file of this process."""

    __slots__ = ("path", "fd", "size", "capacity", "_map", "room")

    def __init__(self, directory: Path, columns: Sequence[str], run_id: str, room: int = 0) -> None:
        """A fresh segment; `room`: the size of a record it must hold (beyond SEGMENT_BYTES: its own size)."""
        make_private_dir(directory)  # once per segment, not per row
        name = f"{run_id}.{os.getpid()}.{next(_SEQUENCE)}"
        header = encode(columns)
        # made under another name and renamed once locked and headed: a reader never sees it half-made
        self.path = directory / f"{name}.new"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._map: mmap.mmap | None = None
        self.size = 0
        self.capacity = max(SEGMENT_BYTES, 3 * _LENGTH.size + len(header) + room)
        # what the largest record that fits here may be: a bigger one needs a segment of its own
        self.room = self.capacity - 3 * _LENGTH.size - len(header)
        try:
            os.fchmod(self.fd, 0o600)  # whatever the umask
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _allocate(self.fd, self.capacity)
            self._map = mmap.mmap(self.fd, self.capacity)
            self.write(header)
            final = directory / f"{name}{SUFFIX}"
            os.rename(self.path, final)
            self.path = final
        except BaseException:
            self.discard()
            raise

    def write(self, data: bytes) -> None:
        """Copy one encoded row in; SegmentFull when it does not fit."""
        start = self.size + _LENGTH.size
        end = start + len(data)
        if end + _LENGTH.size > self.capacity:  # always leave a zero length after the last record
            raise SegmentFull
        mapped = self._map
        assert mapped is not None  # only release() unmaps, and nothing writes to a released segment
        mapped[start:end] = data
        _LENGTH.pack_into(mapped, self.size, len(data))  # last: a row is there or it is not
        self.size = end

    def discard(self) -> None:
        """Its rows are in SQLite (or it never held any): remove it, then release the lock."""
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.release()

    def release(self) -> None:
        """Keep the file for a later reader to ingest; only drop our mapping and descriptor.

        Also what a forked child does with its parent's segments: the flock belongs to the open
        file, which the parent still holds, so closing the child's copy leaves it in place.
        """
        if self._map is not None:
            self._map.close()
            self._map = None
        if self.fd >= 0:
            try:
                os.close(self.fd)
            finally:
                self.fd = -1


def read_records(data: bytes) -> Iterator[tuple[Any, ...]]:
    offset, size = 0, len(data)
    while offset + _LENGTH.size <= size:
        (length,) = _LENGTH.unpack_from(data, offset)
        start = offset + _LENGTH.size
        if length == 0 or start + length > size:
            return  # the end, or a record cut short
        try:
            yield marshal.loads(data[start : start + length])
        except (EOFError, ValueError, TypeError):
            return  # damaged: keep what came before
        offset = start + length


def has_segments(home: Path) -> bool:
    try:
        return any(name.endswith(SUFFIX) for name in os.listdir(journal_dir(home)))
    except OSError:
        return False


def claim_orphans(
    home: Path,
) -> Iterator[tuple[Path, list[dict[str, Any]] | None, list[dict[str, Any]]]]:
    """Segments no live process holds: their call rows as dicts (None: not a segment we can read),
    and their records of other kinds (dicts with a `kind`, in order).

    The file stays locked while the caller handles it: the caller inserts the rows, then calls
    `remove` (or `quarantine`); if it fails first, the file stays for the next reader. Two readers
    never take the same file: the flock is exclusive, and a file already unlinked by the reader
    before us is skipped.
    """
    if fcntl is None:
        return
    directory = journal_dir(home)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        if not name.endswith(SUFFIX):
            continue
        path = directory / name
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its process is alive (or another reader is on it)
            if os.fstat(fd).st_nlink == 0:
                continue  # ingested and removed by another reader a moment ago
            with os.fdopen(os.dup(fd), "rb") as handle:
                records = read_records(handle.read())
            header = next(records, None)
            if not isinstance(header, tuple) or not all(isinstance(name, str) for name in header):
                yield path, None, []
                continue
            rows: list[dict[str, Any]] = []
            others: list[dict[str, Any]] = []
            for record in records:
                if isinstance(record, tuple):
                    rows.append(dict(zip(header, record, strict=False)))
                elif isinstance(record, dict) and isinstance(record.get("kind"), str):
                    others.append(record)
            yield path, rows, others
        finally:
            os.close(fd)


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def quarantine(path: Path) -> None:
    """Keep an unreadable segment for inspection, out of every later reader's way."""
    try:
        os.replace(path, path.with_name(path.name + ".bad"))
    except OSError:
        remove(path)
