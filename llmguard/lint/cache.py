"""Results cached by file content + config + llmguard version, so a re-run touches only changed files.

One pickle per (config, version) fingerprint under `$LLMGUARD_HOME/lint-cache` (default
`./.llmguard/lint-cache`), created owner-only (0700 folder, 0600 files). An entry keeps the
file's size and mtime next to its content hash: when they match, the file is not even read; when
they differ the content hash decides. Entries for results that depend on other files (prompt
templates) keep those files' size and mtime too. The same file keeps discovery's folder records
(walkcache.py).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from llmguard.lint.hashing import blake2b
from llmguard.lint.walkcache import FolderMemo

_KEEP_FINGERPRINTS = 8
_FORMAT = 1

Entry = tuple[int, int, bytes, tuple[tuple[Any, ...], ...], tuple[tuple[str, int, int], ...]]
# (mtime_ns, size, digest, findings as tuples, dependencies as (path, mtime_ns, size))


def cache_dir() -> Path:
    home = os.environ.get("LLMGUARD_HOME")
    base = Path(home).expanduser() if home else Path.cwd() / ".llmguard"
    return base / "lint-cache"


def digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def code_stamp() -> str:
    """Changes whenever the linter's own code changes (so a development checkout never serves stale results)."""
    import llmguard
    from llmguard import lint

    parts = [getattr(llmguard, "__version__", "0"), str(_FORMAT)]
    folder = Path(lint.__file__).parent
    for path in sorted(folder.rglob("*.py")):
        try:
            stat = path.stat()
        except OSError:
            continue
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    for shared in ("tokens.py", "pricing.py"):
        try:
            stat = (folder.parent / shared).stat()
            parts.append(f"{shared}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            pass
    return blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ResultCache:
    def __init__(self, fingerprint: str, folder: Path | None = None) -> None:
        self.folder = folder or cache_dir()
        self.file = self.folder / f"{fingerprint}.pickle"
        self.entries: dict[str, Entry] = {}
        self.folders = FolderMemo({})  # discovery's folder records (walkcache.py)
        self.dirty = False
        self.warning: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            with open(self.file, "rb") as handle:
                data = pickle.load(handle)
        except FileNotFoundError:
            return
        except Exception:  # noqa: BLE001 - a corrupt or foreign cache is rebuilt, never trusted
            return
        if isinstance(data, dict) and data.get("format") == _FORMAT:
            self.entries = data.get("entries", {})
            self.folders = FolderMemo(data.get("folders", {}))

    def lookup_stat(self, path: str, key: tuple[int, int]) -> Entry | None:
        entry = self.entries.get(path)
        if entry is not None and entry[0] == key[0] and entry[1] == key[1] and (not entry[4] or _deps_fresh(entry[4])):
            return entry
        return None

    def lookup_digest(self, path: str, key: tuple[int, int], content_digest: bytes) -> Entry | None:
        entry = self.entries.get(path)
        if entry is not None and entry[2] == content_digest and _deps_fresh(entry[4]):
            if (entry[0], entry[1]) != key:
                self.entries[path] = (key[0], key[1], *entry[2:])
                self.dirty = True
            return entry
        return None

    def store(
        self,
        path: str,
        key: tuple[int, int],
        content_digest: bytes,
        findings: tuple[tuple[Any, ...], ...],
        dependencies: list[str],
    ) -> None:
        deps = tuple((dep, *(stat_key(dep) or (0, -1))) for dep in dependencies)
        self.entries[path] = (key[0], key[1], content_digest, findings, deps)
        self.dirty = True

    def save(self) -> None:
        if not (self.dirty or self.folders.changed):
            return
        import tempfile  # only when something changed: a warm run never loads it

        try:
            _make_private_dir(self.folder)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".pickle")
            try:
                with os.fdopen(fd, "wb") as handle:
                    data = {"format": _FORMAT, "entries": self.entries, "folders": self.folders.records}
                    pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
                os.chmod(temp, 0o600)
                os.replace(temp, self.file)
            except BaseException:
                os.unlink(temp)
                raise
            self._prune()
        except OSError as exc:
            self.warning = (
                f"llmguard lint: cannot write the cache in {self.folder} ({exc.strerror or exc}); "
                "results are correct but not cached (use --no-cache or set LLMGUARD_HOME)"
            )
        self.dirty = self.folders.changed = False

    def _prune(self) -> None:
        """Keep the most recent few fingerprints (old configs and versions)."""
        files = sorted(self.folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[_KEEP_FINGERPRINTS:]:
            try:
                old.unlink()
            except OSError:
                pass


def _deps_fresh(deps: tuple[tuple[str, int, int], ...]) -> bool:
    return all(stat_key(path) == (mtime, size) or (stat_key(path) is None and size == -1) for path, mtime, size in deps)


def _make_private_dir(folder: Path) -> None:
    if not folder.parent.exists():
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:  # a folder that exists keeps the mode its owner gave it
        pass
    else:
        os.chmod(folder, 0o700)  # made here: 0700 whatever the umask
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by llmguard lint\n*\n", encoding="utf-8")
