"""The settings record: every setting with its default, and the keyword types of `llmguard.install()`.

`Settings` is what the guard reads; `SettingsKwargs` spells the same names as keyword arguments so
`install(**settings: Unpack[SettingsKwargs])` is checked by mypy and completed by an editor. A test
keeps the two (and the rules in `rules.py`) naming exactly the same settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from llmguard.config.rules import (
    CacheMode,
    LimitCharge,
    OnBudget,
    OnLimit,
    Source,
    StoreFailure,
    Unpriced,
    validated,
)


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
    # where shared limits keep their books: "process" (this process), "local" (every process using this
    # home), "redis://..." / "rediss://..." (every machine using that Redis; llmguard[redis]).
    # Not in repr: a Redis URL can carry a password.
    store: str = field(default="local", repr=False)
    namespace: str = "default"  # separates teams or projects sharing one store
    store_failure: str = "closed"  # store unreachable: "closed" refuses calls needing more money, "open" admits
    lease_ttl_s: float = 10.0  # a killed process's lease (its unused money) is free again after this
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
    # OpenTelemetry: each call a GenAI span + metrics, through the global providers (llmguard[otel])
    otel: bool = False
    otel_content: bool = False  # also the prompt (and the answer, where the guard holds it) on spans

    def with_updates(self, updates: Mapping[str, Any], source: str | Source = "code") -> Settings:
        """A copy with `updates` applied; every value is checked first (ConfigError if one is bad)."""
        where = source if isinstance(source, Source) else Source(source)
        return dataclasses.replace(self, **validated(updates, where))

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()


class SettingsKwargs(TypedDict, total=False):
    """The settings as keyword arguments: the fields of `Settings`, typed as code may pass them.

    A path for `home`, True/False for `cache` too, any mapping or sequence for the tables and lists
    (copied when checked), and only the listed words for the choices (a typo is a mypy error).
    """

    home: str | os.PathLike[str]
    enabled: bool
    timeout_s: float | None
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    retry_after_cap_s: float
    retry_budget: float | None
    max_retry_wait_s: float
    prices: Mapping[str, Mapping[str, float]]
    ledger: bool
    limits: Mapping[str, Mapping[str, float | None]]
    window_s: float
    shared_limits: bool
    learn_limits: bool
    limit_charge: LimitCharge
    max_wait_s: float
    on_limit: OnLimit
    budget_usd: float | None
    quotas: Mapping[str, Mapping[str, float]]
    on_budget: OnBudget
    store: str
    namespace: str
    store_failure: StoreFailure
    lease_ttl_s: float
    unpriced: Unpriced
    assumed_max_tokens: int
    default_max_tokens: int | None
    fallbacks: Mapping[str, Sequence[str]]
    routes: Sequence[Mapping[str, Any]]
    cache: CacheMode | bool
    cache_ttl_s: float | None
    cache_size_mb: float
    cache_sampled: bool
    cache_key_tags: Sequence[str]
    serve_stale: bool
    dedup_wait_s: float
    otel: bool
    otel_content: bool
