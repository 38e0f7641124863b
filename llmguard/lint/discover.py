"""Which files a run looks at: `.py` and `.ipynb` under the given paths, minus `.gitignore`d and
excluded ones, plus prompt template files matching `prompt-files`.

Paths given explicitly are linted whatever their extension (pre-commit passes extension-less
Python scripts), but configured excludes still apply to them, so the hook and a full run agree.

Symbolic links to folders are not followed unless asked (`--follow-symlinks`), and every folder is
walked at most once (by device and inode), so a link loop can neither hang the walk nor report a
file twice. Links to files are linted like files. A folder that cannot be read is reported.

With a cache (runner.py), folders whose entries and patterns did not change since the last run
are not looked at again (walkcache.py).
"""

from __future__ import annotations

import os
from operator import itemgetter
from pathlib import Path

from llmguard.lint.config import LintConfig
from llmguard.lint.sources import DEFAULT_EXCLUDES, Discovery, SourcePath, display_path
from llmguard.lint.walk import Walk
from llmguard.lint.walkcache import FolderMemo
from llmguard.lint.walkrules import WalkRules

__all__ = ["DEFAULT_EXCLUDES", "Discovery", "SourcePath", "discover", "display_path", "relative_to_root"]


def discover(
    paths: list[str],
    config: LintConfig,
    cwd: str | None = None,
    follow_symlinks: bool = False,
    memo: FolderMemo | None = None,
) -> Discovery:
    cwd = cwd or os.getcwd()
    rules = WalkRules(config)
    found = Discovery()
    walk = Walk(rules, found, cwd, follow_symlinks, memo)
    explicit = False
    for given in paths or ["."]:
        absolute = os.path.abspath(os.path.join(cwd, given))
        if not os.path.lexists(absolute):
            found.missing.append(given)
            continue
        if not os.path.isdir(absolute):
            if not rules.excluded(absolute, False, []):  # explicit files: excludes apply, .gitignore does not
                found.files.append(SourcePath(absolute, display_path(absolute, cwd), rules.kind(absolute) or "python"))
                explicit = True
            continue
        walk.run(absolute, rules.layers_above(absolute))
    if explicit:  # a file given and also found in a folder (or given twice): the first one counts
        seen: set[str] = set()
        unique = []
        for source in found.files:
            if source.path not in seen:
                seen.add(source.path)
                unique.append(source)
        found.files = unique
    found.files.sort(key=itemgetter(1))  # by display
    return found


def relative_to_root(path: str, config: LintConfig) -> str:
    try:
        return Path(path).relative_to(config.root).as_posix()
    except ValueError:
        return Path(path).name
