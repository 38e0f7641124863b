"""What a walk keeps and drops: excludes, `.gitignore` layers and prompt-file globs for one run."""

from __future__ import annotations

import os
from collections.abc import Callable

from llmguard.lint.config import LintConfig
from llmguard.lint.gitignore import PatternSet
from llmguard.lint.sources import DEFAULT_EXCLUDES

IGNORE_FILES = (".gitignore", os.path.join(".git", "info", "exclude"))  # a folder's own patterns


class WalkRules:
    """Excludes, .gitignore layers and prompt-file globs for one run."""

    def __init__(self, config: LintConfig) -> None:
        self.root = str(config.root)
        self.exclude = PatternSet(list(config.exclude))
        self.prompt_files = PatternSet(list(config.prompt_files))
        self.use_gitignore = config.respect_gitignore
        self._gitignores: dict[str, PatternSet | None] = {}

    def _relative(self, path: str) -> str | None:
        return path[len(self.root) + 1 :].replace(os.sep, "/") if path.startswith(self.root + os.sep) else None

    def gitignore(self, folder: str, names: set[str] | None = None) -> PatternSet | None:
        """The patterns of `folder`'s .gitignore and .git/info/exclude; `names` (the folder's
        listing, when known) saves opening files that are not there."""
        if folder not in self._gitignores:
            found = None
            if self.use_gitignore:
                lines: list[str] = []
                for name in IGNORE_FILES:
                    if names is not None and name.split(os.sep, 1)[0] not in names:
                        continue
                    try:
                        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                            lines.extend(handle.read().splitlines())
                    except OSError:
                        pass
                found = (PatternSet(lines) or None) if lines else None
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

    def entry_filter(self, folder: str, layers: list[tuple[str, PatternSet]]) -> Callable[[str, bool], bool] | None:
        """`excluded` for the entries of one folder, as (name, is_dir) -> bool, or None when nothing
        can exclude them; DEFAULT_EXCLUDES are the caller's to check. The folder's part of every
        relative path is worked out once per folder, not once per entry."""
        probe = os.path.join(folder, "\0")  # an entry's path, with a name no entry has
        relative = self._relative(probe)
        root_prefix = relative[:-1] if relative is not None else None
        matchers = [
            patterns.in_folder(probe[len(base) + 1 : -2].replace(os.sep, "/"))  # without "/\0"
            for base, patterns in layers
            if probe.startswith(base + os.sep)
        ]
        exclude = self.exclude if self.exclude else None
        if exclude is None and not matchers:
            return None
        if exclude is None and len(matchers) == 1:  # the usual case: one .gitignore above
            only = matchers[0]
            return lambda name, is_dir: only(name, is_dir) is True

        def excluded(name: str, is_dir: bool) -> bool:
            if exclude is not None and exclude.match(name if root_prefix is None else root_prefix + name, is_dir):
                return True
            ignored = None
            for match in matchers:
                verdict = match(name, is_dir)
                if verdict is not None:
                    ignored = verdict
            return bool(ignored)

        return excluded

    def chain_above(self, folder: str) -> list[str]:
        """The folders whose .gitignore applies to `folder`: the repository root (or the filesystem
        root) down to `folder` itself; none when .gitignore files are not read."""
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
        return chain[::-1]

    def layers_above(self, folder: str) -> list[tuple[str, PatternSet]]:
        """.gitignore files from the repository root (or filesystem root) down to `folder`."""
        layers = []
        for base in self.chain_above(folder):
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
