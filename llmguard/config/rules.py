"""What every setting accepts, and how a bad value is reported.

One row per setting in `RULES`: its check (returns the clean value or raises), a valid example and,
for optional settings, what None means. A bad value is a `ConfigError` naming the key, the value,
where it came from (a `Source`) and an example written the way that source writes it. Policies
downstream may assume what the rules promise (finite numbers in range, the documented shapes).
This module knows nothing of the `Settings` record or of where values are read from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args


class ConfigError(ValueError):
    """A setting that cannot be used; the message says which, where it came from and what to do."""


# The vocabulary of the structured settings (budget.py and pricing.py read the same keys).
QUOTA_SCOPES = ("tenant", "user", "feature")
QUOTA_UNITS = ("usd_per_day", "usd_per_run", "tokens_per_day", "tokens_per_run")
# USD per million tokens; cache_write_mtok: writes kept 5 minutes (Anthropic's default), _1h_: an hour
PRICE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")
LIMIT_KEYS = ("rpm", "tpm")
LIMIT_UNITS = {"rpm": "requests per window_s", "tpm": "tokens per window_s"}
ROUTE_KEYS = ("when", "model", "from")
NONE_WORDS = ("none", "off", "")  # an optional setting given as text ("none" in TOML or the environment)

# The settings that take one of a few words; `SettingsKwargs` types them, the rules below check them.
LimitCharge = Literal["admission", "usage"]
OnLimit = Literal["fallback", "refuse"]
OnBudget = Literal["refuse", "fallback"]
Unpriced = Literal["refuse", "allow"]
CacheMode = Literal["on", "off", "read", "write", "refresh"]
StoreFailure = Literal["closed", "open"]


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
    return _choice(*get_args(CacheMode))(value, at)


def _name(value: Any, at: _At, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        at.fail(value, f"must be a non-empty string: {what}")
    return value


def _home(value: Any, at: _At) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and "://" in value:  # a store URL given as the home: never a folder
        from llmguard.redact import url_without_password  # named after its password

        at.fail(url_without_password(value), "is a URL, not a folder; a Redis URL is the store= setting")
    return _name(
        value,
        at,
        "the folder for the ledger, the cache and shared state (an empty name would be the working directory)",
    )


def _store(value: Any, at: _At) -> str:
    """`process`, `local` or a Redis URL; a bad URL is shown without its password."""
    from urllib.parse import urlsplit

    from llmguard.redact import url_without_password

    if value in ("process", "local"):
        return str(value)
    want = "'process', 'local' or a Redis URL (redis://HOST:PORT/DB or rediss://...)"
    if not isinstance(value, str):
        at.fail(value, f"must be {want}")
    shown = url_without_password(value)
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        at.fail(shown, f"must be {want}")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        at.fail(shown, f"must be {want}")
    return value.strip()


def _namespace(value: Any, at: _At) -> str:
    name = _name(value, at, "a name that separates teams or projects in one store")
    if any(c.isspace() for c in name):
        at.fail(value, "must be one word (no spaces)")
    return name


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
    "limit_charge": Rule(_choice(*get_args(LimitCharge)), "admission"),
    "max_wait_s": Rule(_number(what=SECONDS), 10),
    "on_limit": Rule(_choice(*get_args(OnLimit)), "fallback"),
    "budget_usd": Rule(_number(what="USD"), 5.0, none="no session budget"),
    "quotas": Rule(_quotas, {"tenant:acme": {"usd_per_day": 1.0}}),
    "on_budget": Rule(_choice(*get_args(OnBudget)), "refuse"),
    "store": Rule(_store, "local"),
    "namespace": Rule(_namespace, "default"),
    "store_failure": Rule(_choice(*get_args(StoreFailure)), "closed"),
    "lease_ttl_s": Rule(_number(above=True, what=SECONDS), 10),
    "unpriced": Rule(_choice(*get_args(Unpriced)), "refuse"),
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
    "otel": Rule(_flag, True),
    "otel_content": Rule(_flag, False),
}


def check_setting(name: str, value: Any, source: Source = CODE) -> Any:
    """The clean value of one setting, or ConfigError saying what is wrong and what would do."""
    rule = RULES[name]
    said_none = value is None or isinstance(value, str) and value.strip().lower() in NONE_WORDS
    if rule.none is not None and said_none:  # "none" works in TOML and the environment too
        return None
    return rule.check(value, _At(name, name, source))


def validated(updates: Mapping[str, Any], source: Source, problems: list[str] | None = None) -> dict[str, Any]:
    """Checked values by setting name (`RULES` has a row for every field of `Settings`, so its keys are
    the known settings). With `problems`, a bad value is noted there and left out."""
    clean: dict[str, Any] = {}
    for raw_key, value in updates.items():
        key = str(raw_key).replace("-", "_")
        try:
            if key not in RULES:
                known = ", ".join(sorted(RULES))
                raise ConfigError(f"llmguard: unknown setting {raw_key!r} from {source.label}; known settings: {known}")
            clean[key] = check_setting(key, value, source)
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return clean
