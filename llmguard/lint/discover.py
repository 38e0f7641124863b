"""Which files a run looks at: `.py` and `.ipynb` under the given paths, minus `.gitignore`d and
excluded ones, plus prompt template files matching `prompt-files`.

Paths given explicitly are linted whatever their extension (pre-commit passes extension-less
Python scripts), but configured excludes still apply to them, so the hook and a full run agree.

Symbolic links to folders are not followed unless asked (`--follow-symlinks`), and every folder is
walked at most once (by device and inode), so a link loop can neither hang the walk nor report a
file twice. Links to files are linted like files. A folder that cannot be read is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from llmguard.lint.config import LintConfig
from llmguard.lint.gitignore import PatternSet

DEFAULT_EXCLUDES = frozenset(
    (
        ".bzr",
        ".direnv",
        ".eggs",
        ".git",
        ".git-rewrite",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pants.d",
        ".pyenv",
        ".pytest_cache",
        ".pytype",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        ".vscode",
        "__pypackages__",
        "__pycache__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
        ".llmguard",
    )
)
_SOURCE_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class SourcePath:
    path: str  # absolute
    display: str  # as reported: relative to the working directory when inside it
    kind: str  # "python" | "notebook" | "template"


@dataclass
class Discovery:
    files: list[SourcePath] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # paths given that do not exist
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder as displayed, why it cannot be read)


def display_path(path: str, cwd: str) -> str:
    if path.startswith(cwd + os.sep):
        return path[len(cwd) + 1 :]
    return path


class _Rules:
    """Excludes, .gitignore layers and prompt-file globs for one run."""

    def __init__(self, config: LintConfig) -> None:
        self.root = str(config.root)
        self.exclude = PatternSet(list(config.exclude))
        self.prompt_files = PatternSet(list(config.prompt_files))
        self.use_gitignore = config.respect_gitignore
        self._gitignores: dict[str, PatternSet | None] = {}

    def _relative(self, path: str) -> str | None:
        return path[len(self.root) + 1 :].replace(os.sep, "/") if path.startswith(self.root + os.sep) else None

    def gitignore(self, folder: str) -> PatternSet | None:
        if folder not in self._gitignores:
            found = None
            if self.use_gitignore:
                lines: list[str] = []
                for name in (".gitignore", os.path.join(".git", "info", "exclude")):
                    try:
                        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                            lines.extend(handle.read().splitlines())
                    except OSError:
                        pass
                found = PatternSet(lines) or None
            self._gitignores[folder] = found
        return self._gitignores[folder]

    def excluded(self, path: str, is_dir: bool, layers: list[tuple[str, PatternSet]]) -> bool:
        name = os.path.basename(path)
        if name in DEFAULT_EXCLUDES:
            return True
        if self.exclude:
            relative = self._relative(path)
            if self.exclude.match(relative if relative is not None else name, is_dir):
                return True
        ignored = None
        for base, patterns in layers:
            if path.startswith(base + os.sep):
                verdict = patterns.match(path[len(base) + 1 :].replace(os.sep, "/"), is_dir)
                if verdict is not None:
                    ignored = verdict
        return bool(ignored)

    def layers_above(self, folder: str) -> list[tuple[str, PatternSet]]:
        """.gitignore files from the repository root (or filesystem root) down to `folder`."""
        if not self.use_gitignore:
            return []
        chain, current = [], folder
        while True:
            chain.append(current)
            if os.path.isdir(os.path.join(current, ".git")):
                break
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        layers = []
        for base in reversed(chain):
            patterns = self.gitignore(base)
            if patterns is not None:
                layers.append((base, patterns))
        return layers

    def kind(self, path: str) -> str | None:
        if path.endswith(".ipynb"):
            return "notebook"
        if path.endswith(".py"):
            return "python"
        relative = self._relative(path)
        if self.prompt_files and relative is not None and self.prompt_files.match(relative):
            return "template"
        return None


def discover(paths: list[str], config: LintConfig, cwd: str | None = None, follow_symlinks: bool = False) -> Discovery:
    cwd = cwd or os.getcwd()
    rules = _Rules(config)
    found = Discovery()
    seen: set[str] = set()
    walk = _Walk(rules, found, cwd, follow_symlinks)

    def add(path: str, kind: str) -> None:
        if path not in seen:
            seen.add(path)
            found.files.append(SourcePath(path, display_path(path, cwd), kind))

    for given in paths or ["."]:
        absolute = os.path.abspath(os.path.join(cwd, given))
        if not os.path.lexists(absolute):
            found.missing.append(given)
            continue
        if not os.path.isdir(absolute):
            if not rules.excluded(absolute, False, []):  # explicit files: excludes apply, .gitignore does not
                add(absolute, rules.kind(absolute) or "python")
            continue
        walk.run(absolute, rules.layers_above(absolute), add)
    found.files.sort(key=lambda f: f.display)
    return found


class _Walk:
    """Folder walks for one run, sharing the set of folders already visited."""

    def __init__(self, rules: _Rules, found: Discovery, cwd: str, follow_symlinks: bool) -> None:
        self.rules, self.found, self.cwd, self.follow = rules, found, cwd, follow_symlinks
        self.visited: set[tuple[int, int]] = set()

    def _first_visit(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return True  # scandir will say what is wrong with it
        key = (st.st_dev, st.st_ino)
        if key in self.visited:
            return False
        self.visited.add(key)
        return True

    def run(self, top: str, layers: list[tuple[str, PatternSet]], add) -> None:  # noqa: ANN001
        rules = self.rules
        if not self._first_visit(top):
            return
        stack = [(top, layers)]
        while stack:
            folder, active = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as exc:
                self.found.unreadable.append((display_path(folder, self.cwd), exc.strerror or str(exc)))
                continue
            own = rules.gitignore(folder) if folder != top else None  # top's own is already in `layers`
            if own is not None:
                active = [*active, (folder, own)]
            subfolders = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir()  # through a link too
                    linked_dir = is_dir and entry.is_symlink()
                except OSError:
                    is_dir = linked_dir = False
                if linked_dir and not self.follow:
                    continue
                if rules.excluded(entry.path, is_dir, active):
                    continue
                if is_dir:
                    if self._first_visit(entry.path):
                        subfolders.append(entry.path)
                    continue
                kind = rules.kind(entry.path)
                if kind is not None:
                    add(entry.path, kind)
            stack.extend((sub, active) for sub in sorted(subfolders, reverse=True))


def relative_to_root(path: str, config: LintConfig) -> str:
    try:
        return Path(path).relative_to(config.root).as_posix()
    except ValueError:
        return Path(path).name
