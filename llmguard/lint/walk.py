"""The folder walk of a run: each folder once (by device and inode), its entries matched against
the excludes and .gitignore layers (walkrules.py), and, with a cache, folders whose listing and
patterns did not change replayed from the last run's records instead (walkcache.py).
"""

from __future__ import annotations

import os

from llmguard.lint.gitignore import PatternSet
from llmguard.lint.sources import DEFAULT_EXCLUDES, Discovery, SourcePath, display_path
from llmguard.lint.walkcache import FolderMemo, Layers, Record, Stamp, file_stamp, stamp_of
from llmguard.lint.walkrules import IGNORE_FILES, WalkRules

_source = tuple.__new__  # _source(SourcePath, (path, display, kind)): NamedTuple's own __new__ is Python code
_Active = list[tuple[str, PatternSet]]


class Walk:
    """Folder walks for one run, sharing the set of folders already visited."""

    def __init__(
        self, rules: WalkRules, found: Discovery, cwd: str, follow_symlinks: bool, memo: FolderMemo | None = None
    ) -> None:
        self.rules, self.found, self.cwd, self.follow = rules, found, cwd, follow_symlinks
        self.memo = None if follow_symlinks else memo  # where links point is not in a folder's stamp
        self.visited: set[tuple[int, int]] = set()
        self.stamps: dict[str, Stamp] = {}

    def _first_visit(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return True  # scandir will say what is wrong with it
        key = (st.st_dev, st.st_ino)
        if key in self.visited:
            return False
        self.visited.add(key)
        if self.memo is not None:
            self.stamps[path] = stamp_of(st)
        return True

    def _top_layers(self, top: str) -> Layers:
        """The root, then every folder whose ignore files apply to `top`, with those files' stamps."""
        chain = self.rules.chain_above(top)
        return (self.rules.root, *((base, _stamps(base, IGNORE_FILES)) for base in chain))

    def run(self, top: str, layers: _Active) -> None:
        """Add the sources under `top` to `found.files`.

        A folder is walked once per run, so a walk never adds a path twice (discover() drops the
        paths that were also given as files).
        """
        if not self._first_visit(top):
            return
        memo = self.memo
        stack: list[tuple[str, _Active, Layers]] = [(top, layers, self._top_layers(top) if memo else ())]
        while stack:
            folder, active, signature = stack.pop()
            record = memo.get(folder, self.stamps.get(folder)) if memo else None
            entries = None if record is not None else self._list(folder)
            if record is None and entries is None:
                continue
            if folder == top:  # its own patterns are already in `layers`
                ignores: tuple[str, ...] = ()
            else:
                ignores = record[4] if record is not None else _present({entry.name for entry in entries or ()})
            if ignores and self.rules.use_gitignore:
                own = self.rules.gitignore(folder, {name.split(os.sep, 1)[0] for name in ignores})
                active = active + [(folder, own)] if own is not None else active
                signature = (*signature, (folder, _stamps(folder, ignores))) if memo else signature
            if record is not None and record[1] == signature:
                subfolders = self._replay(folder, record)
            else:  # no record, or the patterns that apply here changed
                entries = entries if entries is not None else self._list(folder)
                if entries is None:
                    continue
                subfolders = self._folder(folder, entries, active, signature, ignores)
            stack.extend((sub, active, signature) for sub in sorted(subfolders, reverse=True))

    def _list(self, folder: str) -> list[os.DirEntry[str]] | None:
        try:
            with os.scandir(folder) as listing:
                return list(listing)
        except OSError as exc:
            self.found.unreadable.append((display_path(folder, self.cwd), exc.strerror or str(exc)))
            return None

    def _replay(self, folder: str, record: Record) -> list[str]:
        """Add a recorded folder's sources; returns its subfolders to walk."""
        base = os.path.join(folder, "")
        shown = display_path(base + "\0", self.cwd)[:-1]
        self.found.files.extend([_source(SourcePath, (base + name, shown + name, kind)) for name, kind in record[2]])
        return [base + name for name in record[3] if self._first_visit(base + name)]

    def _folder(
        self,
        folder: str,
        entries: list[os.DirEntry[str]],
        active: _Active,
        signature: Layers,
        ignores: tuple[str, ...],
    ) -> list[str]:
        """Add one folder's sources (and record them); returns its subfolders to walk. The hot loop of a cold run."""
        rules, files, memo = self.rules, self.found.files, self.memo
        excluded = rules.entry_filter(folder, active)
        shown = display_path(os.path.join(folder, "\0"), self.cwd)[:-1]  # display = shown + name
        templates = bool(rules.prompt_files)
        sources: list[tuple[str, str]] = []
        kept: list[str] = []
        recordable = memo is not None
        for entry in entries:
            name = entry.name
            if name in DEFAULT_EXCLUDES:
                continue
            try:
                is_dir = entry.is_dir()  # through a link too
                linked = (is_dir or recordable) and entry.is_symlink()
            except OSError:
                is_dir = linked = recordable = False
            if linked:
                recordable = False
                if is_dir and not self.follow:
                    continue
            if is_dir:
                if excluded is None or not excluded(name, True):
                    kept.append(name)
                continue
            # the kind first: most files are not sources, and it is cheaper to tell
            if name.endswith(".py"):
                kind: str | None = "python"
            elif name.endswith(".ipynb"):
                kind = "notebook"
            else:
                kind = rules.kind(entry.path) if templates else None
            if kind is not None and (excluded is None or not excluded(name, False)):
                sources.append((name, kind))
        base = os.path.join(folder, "")
        files.extend([_source(SourcePath, (base + name, shown + name, kind)) for name, kind in sources])
        if memo is not None:
            if recordable:
                memo.store(folder, self.stamps.get(folder), signature, sources, kept, ignores)
            else:
                memo.forget(folder)
        return [base + name for name in kept if self._first_visit(base + name)]


def _present(names: set[str]) -> tuple[str, ...]:
    """The ignore files a folder with these entries may have (.git/info/exclude: when it has .git)."""
    return tuple(name for name in IGNORE_FILES if name.split(os.sep, 1)[0] in names)


def _stamps(folder: str, files: tuple[str, ...]) -> tuple[Stamp | None, ...]:
    return tuple(file_stamp(os.path.join(folder, name)) for name in files)
