"""What discovery hands on: the files of a run (`SourcePath`), and the folders it never looks in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

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


class SourcePath(NamedTuple):  # a tuple: a large tree has tens of thousands, made on every run
    path: str  # absolute
    display: str  # as reported: relative to the working directory when inside it
    kind: str  # "python" | "notebook" | "template"


_source = tuple.__new__  # _source(SourcePath, (path, display, kind)): NamedTuple's own __new__ is Python code


@dataclass
class Discovery:
    files: list[SourcePath] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # paths given that do not exist
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder as displayed, why it cannot be read)


def display_path(path: str, cwd: str) -> str:
    if path.startswith(cwd + os.sep):
        return path[len(cwd) + 1 :]
    return path
