"""Folder listings remembered between runs, so a warm run does not look at every entry again.

Walking a tree is most of a warm run (every entry is matched against the .gitignore layers); the
answer for a folder changes only when its entries or the patterns that apply to it change. A
record keeps, for one folder, the sources and subfolders the walk kept there, and is used again
while:

- the folder's stamp (mtime, ctime, inode, device) is the same: adding, removing or renaming an
  entry changes its mtime, chmod/chown its ctime;
- the patterns that applied are the same: the record holds the stamps of every .gitignore and
  .git/info/exclude file above it (and of the run's root), compared as one `Layers` value.

A folder changed less than `RACY_NS` before the walk that saw it is not recorded (a change in the
same clock tick as the listing would leave its mtime as it was), nor is one holding a symbolic
link (where a link points can change without its folder changing). Records live in the lint
cache's file (cache.py), under the same config and code fingerprint.
"""

from __future__ import annotations

import os
import time

Stamp = tuple[int, int, int, int]  # (mtime_ns, ctime_ns, inode, device) of a folder or file
Layers = tuple[object, ...]  # the run's root, then (folder, stamps of its ignore files) per layer
# (folder stamp, layers, sources as (name, kind), subfolders kept, names of the folder's ignore files)
Record = tuple[Stamp, Layers, tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, ...]]

RACY_NS = 2_000_000_000


def stamp_of(st: os.stat_result) -> Stamp:
    return st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def file_stamp(path: str) -> Stamp | None:
    try:
        return stamp_of(os.stat(path))
    except OSError:
        return None


class FolderMemo:
    """The records of one cache file: looked up and stored by the walk (walk.py)."""

    def __init__(self, records: dict[str, Record]) -> None:
        self.records = records
        self.changed = False
        self._racy_after = time.time_ns() - RACY_NS

    def get(self, folder: str, stamp: Stamp | None) -> Record | None:
        """The record of `folder` if its stamp is unchanged (the caller compares the layers)."""
        record = self.records.get(folder)
        if record is None or stamp is None or record[0] != stamp:
            return None
        return record

    def store(
        self,
        folder: str,
        stamp: Stamp | None,
        layers: Layers,
        sources: list[tuple[str, str]],
        subfolders: list[str],
        ignores: tuple[str, ...],
    ) -> None:
        if stamp is None or self._racy(stamp) or not self._settled(layers):
            self.forget(folder)
            return
        record = (stamp, layers, tuple(sources), tuple(subfolders), ignores)
        if self.records.get(folder) != record:
            self.records[folder] = record
            self.changed = True

    def forget(self, folder: str) -> None:
        if self.records.pop(folder, None) is not None:
            self.changed = True

    def _racy(self, stamp: Stamp) -> bool:
        return stamp[0] > self._racy_after or stamp[1] > self._racy_after

    def _settled(self, layers: Layers) -> bool:
        """No ignore file in `layers` changed too recently to trust its stamp."""
        for layer in layers[1:]:
            for stamp in layer[1]:  # type: ignore[index]
                if stamp is not None and self._racy(stamp):
                    return False
        return True
