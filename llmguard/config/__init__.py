"""Settings: one dataclass; sources, lowest first: defaults < pyproject [tool.llmguard] < env < code.

Every setting has the same name everywhere: a keyword of `llmguard.install(...)`, a key under
`[tool.llmguard]` (dashes or underscores), and `LLMGUARD_<NAME>` in the environment for scalars.

Every value is checked once, against its rule in `RULES` (one row per setting): a bad value is a
`ConfigError` naming the key, the value, where it came from and a valid example written the way
that source writes it. Readers that must work on a broken configuration (`llmguard report`) use
`load_settings_for_reading`, which keeps the valid parts and says what it ignored.

The package by job: `settings` (the record and its keyword types), `rules` (what each setting
accepts and the messages), `sources` (pyproject.toml, the environment, code). Import from here.
"""

from __future__ import annotations

import tomllib  # noqa: F401 - the TOML reader `sources` uses: the standard library's, never a fallback

from llmguard.config.rules import (
    CODE,
    ENVIRONMENT,
    LIMIT_KEYS,
    LIMIT_UNITS,
    NONE_WORDS,
    PRICE_KEYS,
    QUOTA_SCOPES,
    QUOTA_UNITS,
    ROUTE_KEYS,
    RULES,
    SECONDS,
    CacheMode,
    ConfigError,
    LimitCharge,
    OnBudget,
    OnLimit,
    Rule,
    Source,
    StoreFailure,
    Unpriced,
    check_setting,
    example,
    pyproject_source,
    validated,
)
from llmguard.config.settings import Settings, SettingsKwargs
from llmguard.config.sources import (
    env_settings,
    find_pyproject,
    load_settings,
    load_settings_for_reading,
    pyproject_table,
    tool_table,
)

# Shown as before the split (tracebacks print `llmguard.config.ConfigError`); pickles resolve here too.
ConfigError.__module__ = Settings.__module__ = __name__

__all__ = [
    "CODE",
    "ENVIRONMENT",
    "LIMIT_KEYS",
    "LIMIT_UNITS",
    "NONE_WORDS",
    "PRICE_KEYS",
    "QUOTA_SCOPES",
    "QUOTA_UNITS",
    "ROUTE_KEYS",
    "RULES",
    "SECONDS",
    "CacheMode",
    "ConfigError",
    "LimitCharge",
    "OnBudget",
    "OnLimit",
    "Rule",
    "Settings",
    "SettingsKwargs",
    "Source",
    "StoreFailure",
    "Unpriced",
    "check_setting",
    "env_settings",
    "example",
    "find_pyproject",
    "load_settings",
    "load_settings_for_reading",
    "pyproject_source",
    "pyproject_table",
    "tool_table",
    "validated",
]
