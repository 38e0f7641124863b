"""Where settings come from, lowest first: defaults < pyproject [tool.llmguard] < LLMGUARD_* < code.

`load_settings` is what `install()` uses: any bad value stops it with a `ConfigError`. Readers that
must work on a broken configuration (`llmguard report`, `check`) use `load_settings_for_reading`,
which keeps the valid parts and says what it ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmguard.config.rules import CODE, ENVIRONMENT, ConfigError, example, pyproject_source, validated
from llmguard.config.settings import Settings

# Scalar settings only: dict and list settings come from files or code.
_ENV_NAMES = tuple(f.name for f in dataclasses.fields(Settings) if f.default_factory is dataclasses.MISSING)


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def tool_table(path: Path | None, strict: bool = True) -> dict[str, Any]:
    """The whole [tool.llmguard] table of a pyproject.toml (its sub-tables included).

    strict=False: an unreadable file, or a [tool.llmguard] that is not a table, reads as empty.
    """
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not strict:
            return {}
        raise ConfigError(f"llmguard: cannot read {path}: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("llmguard", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        if not strict:
            return {}
        raise ConfigError(
            f"llmguard: [tool.llmguard] in {path} must be a table of settings, got {table!r}, "
            f"e.g. [tool.llmguard] then {example('timeout_s', 'toml')} on the next line"
        )
    return dict(table)


def pyproject_table(path: Path | None) -> dict[str, Any]:
    """[tool.llmguard] without its lint and alerts sub-tables (their own modules read those)."""
    table = tool_table(path)
    for sub_table in ("lint", "alerts"):
        table.pop(sub_table, None)
    return table


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name in _ENV_NAMES:
        value = environ.get(f"LLMGUARD_{name.upper()}")
        if value is not None:
            found[name] = value
    return found


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    start: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults < nearest pyproject's [tool.llmguard] < LLMGUARD_* < `overrides`; ConfigError if one is bad."""
    pyproject = find_pyproject(start)
    settings = Settings()
    table = pyproject_table(pyproject)
    if table and pyproject is not None:  # a table is only ever read from a file
        settings = settings.with_updates(table, pyproject_source(pyproject))
    env = env_settings(environ)
    if env:
        settings = settings.with_updates(env, ENVIRONMENT)
    if overrides:
        settings = settings.with_updates(overrides, CODE)
    return settings


def load_settings_for_reading(
    overrides: Mapping[str, Any] | None = None,
    start: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, str | None]:
    """Settings for commands that only read (`llmguard report`, `check`), and a warning or None.

    The same sources as `load_settings`, but a broken configuration does not stop a reader: each bad
    value (or an unreadable pyproject.toml) is left out, so its default stays, and the warning lists
    what was ignored. Show the warning to the user; `install()` would refuse the same values.
    """
    problems: list[str] = []
    settings = Settings()
    pyproject = find_pyproject(start)
    try:
        table = pyproject_table(pyproject)
    except ConfigError as exc:
        problems.append(str(exc))
        table = {}
    sources = [
        (table, pyproject_source(pyproject) if pyproject else CODE),
        (env_settings(environ), ENVIRONMENT),
        (overrides or {}, CODE),
    ]
    for updates, source in sources:
        settings = dataclasses.replace(settings, **validated(updates, source, problems))
    if not problems:
        return settings, None
    listed = "\n".join("  - " + p.removeprefix("llmguard: ") for p in problems)
    count = f"{len(problems)} invalid setting{'s' if len(problems) != 1 else ''}"
    return settings, (
        f"llmguard: ignoring {count} (their defaults are used while reading; "
        f"`llmguard.install()` refuses them until they are fixed):\n{listed}"
    )
