"""Settings: one dataclass; sources, lowest first: defaults < pyproject [tool.llmguard] < env < code.

Every setting has the same name everywhere: a keyword of `llmguard.install(...)`, a key under
`[tool.llmguard]` (dashes or underscores), and `LLMGUARD_<NAME>` in the environment for scalars.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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

    def with_updates(self, updates: dict[str, Any], source: str = "code") -> Settings:
        return dataclasses.replace(self, **_validated(updates, source))

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


_OPTIONAL_KINDS = {
    "timeout_s": float, "budget_usd": float, "retry_budget": float, "default_max_tokens": int, "cache_ttl_s": float,
}
_CHOICES = {
    "cache": ("on", "off", "read", "write", "refresh"),
    "limit_charge": ("admission", "usage"),
    "on_limit": ("fallback", "refuse"),
    "on_budget": ("refuse", "fallback"),
}


def _coerce(name: str, value: Any, source: str) -> Any:
    default = _FIELDS[name].default
    kind = type(default) if default is not dataclasses.MISSING and default is not None else None
    kind = _OPTIONAL_KINDS.get(name, kind)
    if name == "cache" and isinstance(value, bool):
        value = "on" if value else "off"
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"llmguard: setting {name}={value!r} from {source} must be one of {_CHOICES[name]}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, str) and kind in (int, float, bool):
        text = value.strip().lower()
        if kind is bool:
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
        elif name in _OPTIONAL_KINDS and text in ("none", "off", ""):
            return None
        else:
            try:
                return kind(text)
            except ValueError:
                pass
        raise ConfigError(f"llmguard: setting {name}={value!r} from {source} is not a valid {kind.__name__}")
    if kind in (int, float) and value is not None and not isinstance(value, int | float):
        raise ConfigError(f"llmguard: setting {name}={value!r} from {source} must be a number")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"llmguard: setting {name}={value!r} from {source} must be a whole number")
    return int(value) if kind is int and value is not None else value


def _validated(updates: dict[str, Any], source: str) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for raw_key, value in updates.items():
        key = raw_key.replace("-", "_")
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"llmguard: unknown setting {raw_key!r} from {source}; known settings: {known}")
        clean[key] = _coerce(key, value, source)
    if "max_attempts" in clean and clean["max_attempts"] < 1:
        raise ConfigError(f"llmguard: max_attempts from {source} must be at least 1 (1 = no retries)")
    if clean.get("timeout_s") is not None and clean["timeout_s"] <= 0:
        raise ConfigError(f"llmguard: timeout_s from {source} must be > 0 seconds (or None for the SDK default)")
    for model, spec in (clean.get("limits") or {}).items():
        if not isinstance(spec, dict) or not set(spec) <= {"rpm", "tpm"} or not spec:
            raise ConfigError(
                f"llmguard: limits[{model!r}] from {source} must look like {{'rpm': 500, 'tpm': 200000}}, got {spec!r}"
            )
    for model, chain in (clean.get("fallbacks") or {}).items():
        if isinstance(chain, str) or not isinstance(chain, list | tuple):
            raise ConfigError(f"llmguard: fallbacks[{model!r}] from {source} must be a list of models, got {chain!r}")
    return clean


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def tool_table(path: Path | None, strict: bool = True) -> dict[str, Any]:
    """The whole [tool.llmguard] table of a pyproject.toml (its sub-tables included)."""
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not strict:
            return {}
        raise ConfigError(f"llmguard: cannot read {path}: {exc}") from None
    table = data.get("tool", {}).get("llmguard", {})
    return dict(table) if isinstance(table, dict) else {}


def pyproject_table(path: Path | None) -> dict[str, Any]:
    """[tool.llmguard] without its lint and alerts sub-tables (their own modules read those)."""
    table = tool_table(path)
    for sub_table in ("lint", "alerts"):
        table.pop(sub_table, None)
    return table


def env_settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name, spec in _FIELDS.items():
        if spec.default_factory is not dataclasses.MISSING:  # dict settings come from files or code
            continue
        value = environ.get(f"LLMGUARD_{name.upper()}")
        if value is not None:
            found[name] = value
    return found


def load_settings(overrides: dict[str, Any] | None = None, start: Path | None = None) -> Settings:
    pyproject = find_pyproject(start)
    settings = Settings()
    table = pyproject_table(pyproject)
    if table:
        settings = settings.with_updates(table, f"{pyproject} [tool.llmguard]")
    env = env_settings()
    if env:
        settings = settings.with_updates(env, "the environment")
    if overrides:
        settings = settings.with_updates(overrides, "code")
    return settings
