"""gitignore-style patterns, for `.gitignore` files and the `exclude`/`prompt-files`/per-file globs.

Implements the documented gitignore rules: `#` comments, `!` negation, a trailing `/` for
directories only, patterns with a `/` anchored to the file's folder, `*`, `?`, `[...]` and `**`.
"""

from __future__ import annotations

import re


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


class PatternSet:
    """Patterns relative to one folder; `match` says ignored (True), re-included (False) or no opinion.

    All patterns compile into one regex per kind of path (files, folders), alternatives in reverse
    order, so a single match finds the last matching pattern, which is the one gitignore obeys.
    """

    def __init__(self, lines: list[str]) -> None:
        self.negated: list[bool] = []
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
            prefix = "" if "/" in line else "(?:.*/)?"  # a pattern with a slash is anchored to its folder
            body = prefix + _translate(line.lstrip("/"))
            group = f"p{len(self.negated)}"
            self.negated.append(negate)
            for_dirs.append(f"(?P<{group}>{body}(?:/|$))")
            for_files.append(f"(?P<{group}>{body}/)" if dir_only else f"(?P<{group}>{body}(?:/|$))")
        self._dirs = re.compile("|".join(reversed(for_dirs))) if for_dirs else None
        self._files = re.compile("|".join(reversed(for_files))) if for_files else None

    def match(self, relative: str, is_dir: bool = False) -> bool | None:
        regex = self._dirs if is_dir else self._files
        if regex is None:
            return None
        found = regex.match(relative)
        if found is None:
            return None
        return not self.negated[int(found.lastgroup[1:])]  # type: ignore[index]

    def __bool__(self) -> bool:
        return bool(self.negated)
