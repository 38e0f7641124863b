"""Settings: one dataclass; sources, lowest first: defaults < pyproject [tool.llmguard] < env < code.

Every setting has the same name everywhere: a keyword of `llmguard.install(...)`, a key under
`[tool.llmguard]` (dashes or underscores), and `LLMGUARD_<NAME>` in the environment for scalars.

Every value is checked once, here, against its rule in `RULES` (one row per setting): a bad value is
a `ConfigError` naming the key, the value, where it came from and a valid example written the way
that source writes it. Policies downstream may assume what the rules promise (finite numbers in
range, the documented shapes). Readers that must work on a broken configuration (`llmguard report`)
use `load_settings_for_reading`, which keeps the valid parts and says what it ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn


class ConfigError(ValueError):
    """A setting that cannot be used; the message says which, where it came from and what to do."""


@dataclass
class Settings:
    home: str = ".llmguard"  # LLMGUARD_HOME: ledger, cache and shared state
    enabled: bool = True
    # time and retries
    timeout_s: float | None = 60.0  # replaces the SDKs' 600 s default; None keeps the SDK's own
    max_attempts: int = 3  # total attempts per call, first one included (the SDKs default to 3 too)
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_cap_s: float = 60.0
    retry_budget: float | None = 0.2  # retries may add at most this fraction of calls (60 s window)
    max_retry_wait_s: float = 30.0  # total backoff one call may spend waiting to retry
    # prices for models genai-prices does not know: {"my-model": {"input_mtok": 0.1, "output_mtok": 0.2}}
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    ledger: bool = True  # False keeps no ledger (e.g. a read-only environment)
    # rate limits: {"gpt-4o-mini": {"rpm": 500, "tpm": 200_000}}; learnt from provider headers too
    limits: dict[str, dict[str, float]] = field(default_factory=dict)
    window_s: float = 60.0  # the window the limits are per (providers use a minute)
    shared_limits: bool = False  # kernels sharing LLMGUARD_HOME share one limit (state in limits.sqlite3)
    learn_limits: bool = True  # read x-ratelimit-* / anthropic-ratelimit-* headers and respect them
    limit_charge: str = "admission"  # "admission": prompt + max tokens stay charged (OpenAI); "usage": refund
    max_wait_s: float = 10.0  # an interactive call waits at most this long for capacity
    on_limit: str = "fallback"  # interactive call over max_wait: "fallback" (then refuse) or "refuse"
    # spend: a session budget in USD, and quotas {"tenant:acme": {"usd_per_day": 1.0}}
    budget_usd: float | None = None
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    on_budget: str = "refuse"  # "refuse" or "fallback" (to a cheaper model in the chain)
    # a call to a model with no known price while a USD budget or quota applies: "refuse" it (its cost
    # could not be counted against the limit), or "allow" it (sent, recorded with cost unknown)
    unpriced: str = "refuse"
    assumed_max_tokens: int = 4096  # worst-case output for calls with no max tokens bound
    default_max_tokens: int | None = None  # if set, added to calls that have no max tokens bound
    # routing: fallbacks {"gpt-4o": ["gpt-4o-mini"]}; routes [{"when": {"feature": "x"}, "model": "m"}]
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    routes: list[dict[str, Any]] = field(default_factory=list)
    # response cache under <home>/cache: deterministic calls (temperature 0 or a seed) by default
    cache: str = "on"  # "on" | "off" | "read" | "write" | "refresh"; per call: llmguard.tag(cache=...)
    cache_ttl_s: float | None = 7 * 24 * 3600.0
    cache_size_mb: float = 1024.0
    cache_sampled: bool = False  # also cache sampled calls (temperature > 0, no seed)
    cache_key_tags: list[str] = field(default_factory=list)  # tags that change the answer, e.g. doc_ids
    serve_stale: bool = False  # provider down: serve an expired cached answer (marked stale) over an error
    dedup_wait_s: float = 120.0  # how long an identical call waits for the one already running

    def with_updates(self, updates: Mapping[str, Any], source: str | Source = "code") -> Settings:
        """A copy with `updates` applied; every value is checked first (ConfigError if one is bad)."""
        where = source if isinstance(source, Source) else Source(source)
        return dataclasses.replace(self, **_validated(updates, where))

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}

# The vocabulary of the structured settings (budget.py and pricing.py read the same keys).
QUOTA_SCOPES = ("tenant", "user", "feature")
QUOTA_UNITS = ("usd_per_day", "usd_per_run", "tokens_per_day", "tokens_per_run")
# USD per million tokens; cache_write_mtok: writes kept 5 minutes (Anthropic's default), _1h_: an hour
PRICE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")
LIMIT_KEYS = ("rpm", "tpm")
LIMIT_UNITS = {"rpm": "requests per window_s", "tpm": "tokens per window_s"}
ROUTE_KEYS = ("when", "model", "from")
NONE_WORDS = ("none", "off", "")  # an optional setting given as text ("none" in TOML or the environment)


# ---- where a value came from, and how to say what is wrong with it ----------------------------


@dataclass(frozen=True)
class Source:
    """Where values came from: named in messages, and it decides how the example is written."""

    label: str  # "code", "the environment", "/path/pyproject.toml [tool.llmguard]"
    style: str = "code"  # "code" (Python keywords) | "toml" | "env" (LLMGUARD_NAME=value)


CODE = Source("code")
ENVIRONMENT = Source("the environment", "env")


def pyproject_source(path: Path) -> Source:
    return Source(f"{path} [tool.llmguard]", "toml")


@dataclass(frozen=True)
class _At:
    """The part of a setting being checked: `limits['gpt-4o']['rpm']` of `limits`, from a source."""

    name: str
    path: str
    source: Source

    def __getitem__(self, key: Any) -> _At:
        return _At(self.name, f"{self.path}[{key!r}]", self.source)

    def fail(self, value: Any, why: str) -> NoReturn:
        where = self.source.label
        if self.source.style == "env":
            where += f" (LLMGUARD_{self.name.upper()})"
        rule = RULES[self.name]
        if rule.none is not None and self.path == self.name:
            none = {"code": "None", "toml": '"none"', "env": "none"}[self.source.style]
            why += f", or {none} ({rule.none})"
        shown = example(self.name, self.source.style)
        raise ConfigError(f"llmguard: setting {self.path}={value!r} from {where} {why}, e.g. {shown}")


def example(name: str, style: str = "code") -> str:
    """A valid value of setting `name`, written as Python keyword, TOML line or environment variable."""
    value = RULES[name].example
    if style == "env":
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return f"LLMGUARD_{name.upper()}={text}"
    if style == "toml":
        return f"{name} = {_toml(value)}"
    return f"{name}={value!r}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{k if k.isidentifier() else json.dumps(k)} = {_toml(v)}" for k, v in value.items())
        return f"{{ {items} }}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


# ---- the checks (each returns the clean value or calls at.fail) ------------------------------


def _num(value: Any, at: _At, low: float = 0.0, above: bool = False, whole: bool = False, what: str = "") -> Any:
    """A finite number >= low (> low if `above`); text is parsed only when it comes from the environment."""
    of = f" of {what}" if what else ""
    want = f"{'a whole' if whole else 'a finite'} number{of} {'above' if above else 'at least'} {low:g}"
    number: Any = value
    if isinstance(value, str) and at.source.style == "env":
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                at.fail(value, f"must be {want}")
    if isinstance(number, bool) or not isinstance(number, int | float | Decimal):
        at.fail(value, f"must be {want}")
    if isinstance(number, Decimal):
        number = float(number)
    if isinstance(number, float) and not math.isfinite(number):
        at.fail(value, f"must be {want}")
    if number < low or (above and number == low) or (whole and not float(number).is_integer()):
        at.fail(value, f"must be {want}")
    return int(number) if whole else number


def _number(low: float = 0.0, above: bool = False, whole: bool = False, what: str = "") -> Callable[..., Any]:
    def check(value: Any, at: _At) -> Any:
        number = _num(value, at, low, above, whole, what)
        return number if whole else float(number)

    return check


def _flag(value: Any, at: _At) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and at.source.style == "env":
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    at.fail(value, "must be True or False" if at.source.style == "code" else "must be true or false")


def _choice(*options: str) -> Callable[[Any, _At], str]:
    def check(value: Any, at: _At) -> str:
        if isinstance(value, str) and value in options:
            return value
        at.fail(value, f"must be one of {', '.join(map(repr, options))}")

    return check


def _cache_mode(value: Any, at: _At) -> str:
    if isinstance(value, bool):  # cache = false in TOML, cache=True in code
        return "on" if value else "off"
    return _choice("on", "off", "read", "write", "refresh")(value, at)


def _name(value: Any, at: _At, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        at.fail(value, f"must be a non-empty string: {what}")
    return value


def _home(value: Any, at: _At) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _name(
        value,
        at,
        "the folder for the ledger, the cache and shared state (an empty name would be the working directory)",
    )


def _table(value: Any, at: _At, of: str) -> dict[Any, Any]:
    """A mapping keyed by names (models, quota keys)."""
    if not isinstance(value, Mapping):
        at.fail(value, f"must be a table of {of}")
    for key in value:
        if not isinstance(key, str) or not key.strip():
            at.fail(value, f"has the key {key!r}; keys must be {of} (non-empty strings)")
    return dict(value)


def _record(value: Any, at: _At, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A mapping with known keys (a limit spec, a price, a route)."""
    optional = [key for key in allowed if key not in required]
    if required:
        wanted = " and ".join(required) + (f", optionally {', '.join(optional)}" if optional else "")
    else:
        wanted = f"one or more of {', '.join(allowed)}"
    if not isinstance(value, Mapping):
        at.fail(value, f"must be a table with {wanted}")
    unknown = [key for key in value if key not in allowed]
    if unknown:
        at.fail(value, f"has the unknown key {unknown[0]!r}; known keys: {', '.join(allowed)}")
    missing = [key for key in required if key not in value]
    if missing or not value:
        at.fail(value, f"needs {wanted}")
    return dict(value)


def _sequence(value: Any, at: _At, of: str) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        at.fail(value, f"must be a list of {of}")
    return list(value)


def _names(value: Any, at: _At) -> list[str]:
    return [_name(item, at[i], "a tag name") for i, item in enumerate(_sequence(value, at, "tag names"))]


def _limits(value: Any, at: _At) -> dict[str, dict[str, Any]]:
    clean = {}
    for model, spec in _table(value, at, "models").items():
        spec = _record(spec, at[model], LIMIT_KEYS)
        clean[model] = {
            key: None if v is None else _num(v, at[model][key], above=True, what=LIMIT_UNITS[key])
            for key, v in spec.items()
        }
    return clean


def _prices(value: Any, at: _At) -> dict[str, dict[str, Any]]:
    clean = {}
    for model, spec in _table(value, at, "models").items():
        spec = _record(spec, at[model], PRICE_KEYS, required=("input_mtok", "output_mtok"))
        clean[model] = {key: _num(v, at[model][key], what="USD per million tokens") for key, v in spec.items()}
    return clean


def _quotas(value: Any, at: _At) -> dict[str, dict[str, Any]]:
    clean = {}
    for key, units in _table(value, at, "quota keys").items():
        scope, sep, name = key.partition(":")
        if not sep or scope not in QUOTA_SCOPES or not name.strip():
            shapes = ", ".join(f"'{s}:NAME'" for s in QUOTA_SCOPES[:-1]) + f" or '{QUOTA_SCOPES[-1]}:NAME'"
            at[key].fail(units, f"has the key {key!r}; a quota key is {shapes}")
        units = _record(units, at[key], QUOTA_UNITS)
        clean[key] = {
            unit: _num(v, at[key][unit], what="USD" if unit.startswith("usd") else "tokens")
            for unit, v in units.items()
        }
    return clean


def _fallbacks(value: Any, at: _At) -> dict[str, list[str]]:
    clean = {}
    for model, chain in _table(value, at, "models").items():
        models = _sequence(chain, at[model], "models")
        clean[model] = [_name(m, at[model][i], "a model name") for i, m in enumerate(models)]
    return clean


def _routes(value: Any, at: _At) -> list[dict[str, Any]]:
    clean = []
    for i, rule in enumerate(_sequence(value, at, "routing rules")):
        rule = _record(rule, at[i], ROUTE_KEYS, required=("model",))
        when = rule.get("when", {})
        for tag, wanted in _table(when, at[i]["when"], "tag names").items():
            if isinstance(wanted, Mapping | list | tuple) or wanted is None:
                at[i]["when"][tag].fail(wanted, "must be a tag value (a string or a number)")
        rule["model"] = _name(rule["model"], at[i]["model"], "a model name")
        if rule.get("from") is not None:
            _name(rule["from"], at[i]["from"], "the requested model this rule applies to")
        clean.append({**rule, "when": dict(when)} if "when" in rule else rule)
    return clean


@dataclass(frozen=True)
class Rule:
    """What one setting accepts: `check` returns the clean value; `none` says what None means, if allowed."""

    check: Callable[[Any, _At], Any]
    example: Any
    none: str | None = None


SECONDS = "seconds"

# One row per setting of `Settings` (a test keeps the two in step).
RULES: dict[str, Rule] = {
    "home": Rule(_home, ".llmguard"),
    "enabled": Rule(_flag, True),
    "timeout_s": Rule(_number(above=True, what=SECONDS), 60, none="keeps the SDK's own timeout"),
    "max_attempts": Rule(_number(low=1, whole=True), 3),
    "backoff_base_s": Rule(_number(what=SECONDS), 0.5),
    "backoff_max_s": Rule(_number(what=SECONDS), 8),
    "retry_after_cap_s": Rule(_number(what=SECONDS), 60),
    "retry_budget": Rule(_number(), 0.2, none="no retry budget: every failing call may retry"),
    "max_retry_wait_s": Rule(_number(what=SECONDS), 30),
    "prices": Rule(_prices, {"my-model": {"input_mtok": 0.1, "output_mtok": 0.2}}),
    "ledger": Rule(_flag, True),
    "limits": Rule(_limits, {"gpt-4o-mini": {"rpm": 500, "tpm": 200_000}}),
    "window_s": Rule(_number(above=True, what=SECONDS), 60),
    "shared_limits": Rule(_flag, False),
    "learn_limits": Rule(_flag, True),
    "limit_charge": Rule(_choice("admission", "usage"), "admission"),
    "max_wait_s": Rule(_number(what=SECONDS), 10),
    "on_limit": Rule(_choice("fallback", "refuse"), "fallback"),
    "budget_usd": Rule(_number(what="USD"), 5.0, none="no session budget"),
    "quotas": Rule(_quotas, {"tenant:acme": {"usd_per_day": 1.0}}),
    "on_budget": Rule(_choice("refuse", "fallback"), "refuse"),
    "unpriced": Rule(_choice("refuse", "allow"), "refuse"),
    "assumed_max_tokens": Rule(_number(low=1, whole=True), 4096),
    "default_max_tokens": Rule(_number(low=1, whole=True), 1024, none="calls without a bound stay unbounded"),
    "fallbacks": Rule(_fallbacks, {"gpt-4o": ["gpt-4o-mini"]}),
    "routes": Rule(_routes, [{"when": {"feature": "classification"}, "model": "gpt-4o-mini"}]),
    "cache": Rule(_cache_mode, "on"),
    "cache_ttl_s": Rule(_number(above=True, what=SECONDS), 604800, none="cached answers never expire"),
    "cache_size_mb": Rule(_number(above=True, what="MB"), 1024),
    "cache_sampled": Rule(_flag, False),
    "cache_key_tags": Rule(_names, ["doc_id"]),
    "serve_stale": Rule(_flag, False),
    "dedup_wait_s": Rule(_number(what=SECONDS), 120),
}


def check_setting(name: str, value: Any, source: Source = CODE) -> Any:
    """The clean value of one setting, or ConfigError saying what is wrong and what would do."""
    rule = RULES[name]
    said_none = value is None or isinstance(value, str) and value.strip().lower() in NONE_WORDS
    if rule.none is not None and said_none:  # "none" works in TOML and the environment too
        return None
    return rule.check(value, _At(name, name, source))


def _validated(updates: Mapping[str, Any], source: Source, problems: list[str] | None = None) -> dict[str, Any]:
    """Checked values by setting name. With `problems`, a bad value is noted there and left out."""
    clean: dict[str, Any] = {}
    for raw_key, value in updates.items():
        key = str(raw_key).replace("-", "_")
        try:
            if key not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(f"llmguard: unknown setting {raw_key!r} from {source.label}; known settings: {known}")
            clean[key] = check_setting(key, value, source)
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return clean


# ---- sources ----------------------------------------------------------------------------------


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
    for name, spec in _FIELDS.items():
        if spec.default_factory is not dataclasses.MISSING:  # dict settings come from files or code
            continue
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
    if table:
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
        settings = dataclasses.replace(settings, **_validated(updates, source, problems))
    if not problems:
        return settings, None
    listed = "\n".join("  - " + p.removeprefix("llmguard: ") for p in problems)
    count = f"{len(problems)} invalid setting{'s' if len(problems) != 1 else ''}"
    return settings, (
        f"llmguard: ignoring {count} (their defaults are used while reading; "
        f"`llmguard.install()` refuses them until they are fixed):\n{listed}"
    )
