"""gitignore-style patterns, for `.gitignore` files and the `exclude`/`prompt-files`/per-file globs.

Implements the documented gitignore rules: `#` comments, `!` negation, a trailing `/` for
directories only, patterns with a `/` anchored to the file's folder, `*`, `?`, `[...]` and `**`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property


def _translate(glob: str) -> str:
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                at_start = i == 0 or glob[i - 1] == "/"
                at_end = i + 2 == n or glob[i + 2] == "/"
                if at_start and at_end:
                    if i + 2 == n:
                        out.append(".*")
                        i += 2
                    else:
                        out.append("(?:.*/)?")
                        i += 3
                    continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


_GLOB_CHARS = frozenset("*?[\\")


class PatternSet:
    """Patterns relative to one folder; `match` says ignored (True), re-included (False) or no opinion.

    gitignore obeys the last pattern that matches, so `match` finds the highest-numbered one. Most
    lines of a real .gitignore name one path component (`__pycache__`, `*.so`, `dist/`); those
    are looked up per component of the path (a dict for plain names, one `endswith` for `*.ext`,
    one regex for other globs). The rest (anchored, with a `/` or `**`) compile into one regex
    per kind of path, alternatives in reverse order, so its first match is the last pattern.
    """

    def __init__(self, lines: list[str]) -> None:
        self.negated: list[bool] = []
        # per component; "dirs" = dir-only patterns (a trailing /), which match folder components only
        self._names: dict[str, int] = {}
        self._dir_names: dict[str, int] = {}
        self._suffixes: list[tuple[str, int]] = []
        self._dir_suffixes: list[tuple[str, int]] = []
        globs: list[str] = []
        dir_globs: list[str] = []
        for_dirs: list[str] = []
        for_files: list[str] = []
        for raw in lines:
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip() or line.startswith("#"):
                continue
            if not line.endswith("\\ "):
                line = line.rstrip()
            negate = line.startswith("!")
            if negate or line.startswith("\\!") or line.startswith("\\#"):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            index = len(self.negated)
            self.negated.append(negate)
            group = f"p{index}"
            if "/" not in line and "**" not in line:  # one component, at any depth
                if not _GLOB_CHARS.intersection(line):
                    (self._dir_names if dir_only else self._names)[line] = index  # later lines win
                elif line.startswith("*") and not _GLOB_CHARS.intersection(line[1:]):
                    (self._dir_suffixes if dir_only else self._suffixes).append((line[1:], index))
                else:
                    (dir_globs if dir_only else globs).append(f"(?P<{group}>{_translate(line)})")
                continue
            prefix = "" if "/" in line else "(?:.*/)?"  # a pattern with a slash is anchored to its folder
            body = prefix + _translate(line.lstrip("/"))
            for_dirs.append(f"(?P<{group}>{body}(?:/|$))")
            for_files.append(f"(?P<{group}>{body}/)" if dir_only else f"(?P<{group}>{body}(?:/|$))")
        self._regex_sources = (globs, dir_globs, for_dirs, for_files)  # compiled on first use: see below
        self._suffix_tuple = tuple(s for s, _ in self._suffixes)
        self._dir_suffix_tuple = tuple(s for s, _ in self._dir_suffixes)
        self._components = bool(
            self._names or self._dir_names or self._suffixes or self._dir_suffixes or globs or dir_globs
        )
        self._has_dir_components = bool(self._dir_names or self._dir_suffixes or dir_globs)
        self._folders: dict[str, int] = {}  # folder path -> best one-component pattern over its components

    # The regexes compile when first matched: a warm run replays its folders (walkcache.py) and
    # matches nothing, and compiling a long .gitignore costs more than the rest of reading it.
    @cached_property
    def _globs(self) -> re.Pattern[str] | None:
        return _alternatives(self._regex_sources[0])

    @cached_property
    def _dir_globs(self) -> re.Pattern[str] | None:
        return _alternatives(self._regex_sources[1])

    @cached_property
    def _dirs(self) -> re.Pattern[str] | None:
        return _alternatives(self._regex_sources[2])

    @cached_property
    def _files(self) -> re.Pattern[str] | None:
        return _alternatives(self._regex_sources[3])

    def match(self, relative: str, is_dir: bool = False) -> bool | None:
        best = -1
        regex = self._dirs if is_dir else self._files
        if regex is not None:
            found = regex.match(relative)
            if found is not None:
                best = int(found.lastgroup[1:])  # type: ignore[index]
        if self._components:
            folder, _, name = relative.rpartition("/")
            if folder:  # every file of a folder shares these components: looked up once per folder
                best = max(best, self._folder_best(folder))
            best = max(best, self._name_best(name, is_dir))
        return None if best < 0 else not self.negated[best]

    def in_folder(self, folder: str) -> Callable[[str, bool], bool | None]:
        """`match` for the entries of one folder (its path relative to these patterns' folder, ""
        for that folder itself), as (name, is_dir) -> verdict: the folder's part is worked out once."""
        # long: _component inlined for files, called once per entry of every folder of a run
        prefix = folder + "/" if folder else ""
        folder_best = self._folder_best(folder) if folder and self._components else -1
        files, dirs, negated, components, name_best = (
            self._files,
            self._dirs,
            self.negated,
            self._components,
            self._name_best,
        )
        names, suffixes, suffix_tuple, globs = self._names, self._suffixes, self._suffix_tuple, self._globs

        def match(name: str, is_dir: bool) -> bool | None:
            best = folder_best
            regex = dirs if is_dir else files
            if regex is not None:
                found = regex.match(prefix + name)
                if found is not None:
                    best = max(best, int(found.lastgroup[1:]))  # type: ignore[index]
            if is_dir:
                if components:
                    best = max(best, name_best(name, True))
            elif components:
                best = max(best, names.get(name, -1))
                if suffix_tuple and name.endswith(suffix_tuple):
                    best = max(best, max(index for suffix, index in suffixes if name.endswith(suffix)))
                if globs is not None:
                    found = globs.fullmatch(name)
                    if found is not None:
                        best = max(best, int(found.lastgroup[1:]))  # type: ignore[index]
            return None if best < 0 else not negated[best]

        return match

    def _name_best(self, name: str, is_dir: bool) -> int:
        """The highest one-component pattern matching the last component (dir-only ones: folders only)."""
        best = _component(name, self._names, self._suffixes, self._suffix_tuple, self._globs)
        if is_dir and self._has_dir_components:
            dir_best = _component(name, self._dir_names, self._dir_suffixes, self._dir_suffix_tuple, self._dir_globs)
            best = max(best, dir_best)
        return best

    def _folder_best(self, folder: str) -> int:
        """The highest one-component pattern matching any component of `folder` (each one a folder)."""
        known = self._folders
        missing: list[str] = []  # this folder and its parents not looked up yet, deepest first
        current = folder
        while current and current not in known:
            missing.append(current)
            current = current.rpartition("/")[0]
        best = known[current] if current else -1
        for path in reversed(missing):
            best = max(best, self._name_best(path.rpartition("/")[2], True))
            known[path] = best
        return best

    def __bool__(self) -> bool:
        return bool(self.negated)


def _alternatives(patterns: list[str]) -> re.Pattern[str] | None:
    """One regex of `patterns`, the last one first (its first match is the highest-numbered)."""
    return re.compile("|".join(reversed(patterns))) if patterns else None


def _component(
    part: str,
    names: dict[str, int],
    suffixes: list[tuple[str, int]],
    suffix_tuple: tuple[str, ...],
    globs: re.Pattern[str] | None,
) -> int:
    """The highest-numbered one-component pattern matching `part` (-1: none)."""
    best = names.get(part, -1)
    if suffix_tuple and part.endswith(suffix_tuple):
        best = max(best, max(index for suffix, index in suffixes if part.endswith(suffix)))
    if globs is not None:
        found = globs.fullmatch(part)
        if found is not None:
            best = max(best, int(found.lastgroup[1:]))  # type: ignore[index]
    return best
