"""Prices from genai-prices' bundled snapshot (never fetched at run time), plus user overrides.

genai-prices' own `calc_price` costs about 100 µs a call here, most of the guard's whole per-call
budget. So the effective `ModelPrice` of a model is resolved through genai-prices once per day,
and when its prices are flat per-token rates (the common case) the cost is computed with the same
Decimal arithmetic genai-prices uses (`price * count / per`, per unit); anything else (tiered
prices, units we cannot see) goes through genai-prices itself. `tests/test_pricing.py` checks the
two agree on random usages across the snapshot's models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llmguard.types import Usage

_MTOK = Decimal(1_000_000)
# Price keys whose usage we never report, so a flat model that has them is still flat for us
# (audio: `Usage` counts no audio tokens, so genai-prices would price none either; without these,
# every Gemini call went through calc_price, ~100 us).
_IGNORABLE = {
    "web_searches_kcount",
    "storage_searches_kcount",
    "code_executions_kcount",
    "input_audio_mtok",
    "cache_audio_read_mtok",
    "output_audio_mtok",
}
_FLAT_KEYS = {"input_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok", "output_mtok"}


@dataclass(frozen=True, slots=True)
class FlatPrice:
    """USD per million tokens. A user override, or a genai-prices price with flat rates."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None  # writes kept 5 minutes (Anthropic's default)
    cache_write_1h_mtok: Decimal | None = None  # writes kept an hour

    def cost(self, usage: Usage) -> Decimal | None:
        cached, written = usage.cached_input_tokens, usage.cache_write_tokens
        written_1h = min(usage.cache_write_1h_tokens, written)
        written_5m = written - written_1h
        if (
            (cached and self.cache_read_mtok is None)
            or (written_5m and self.cache_write_mtok is None)
            or (written_1h and self.cache_write_1h_mtok is None)
        ):
            return None  # the caller falls back to genai-prices, which knows how to fold them in
        total = self.input_mtok * Decimal(usage.input_tokens - cached - written) / _MTOK
        total += self.output_mtok * Decimal(usage.output_tokens) / _MTOK
        if self.cache_read_mtok is not None:
            total += self.cache_read_mtok * Decimal(cached) / _MTOK
        if self.cache_write_mtok is not None:
            total += self.cache_write_mtok * Decimal(written_5m) / _MTOK
        if self.cache_write_1h_mtok is not None:
            total += self.cache_write_1h_mtok * Decimal(written_1h) / _MTOK
        return total


def _genai_usage(usage: Usage) -> Any:
    from genai_prices import Usage as GenaiUsage

    return GenaiUsage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cached_input_tokens or None,
        cache_write_tokens=usage.cache_write_tokens or None,
        cache_write_1h_tokens=min(usage.cache_write_1h_tokens, usage.cache_write_tokens) or None,
        output_tokens=usage.output_tokens,
    )


def genai_cost(provider: str, model: str, usage: Usage) -> Decimal:
    """genai-prices' own arithmetic, slow but authoritative. Raises LookupError for unknown models."""
    return _calc(_genai_usage(usage), model, provider).total_price


def _calc(usage: Any, model: str, provider: str) -> Any:
    """genai-prices' price under the wire's provider, else under the vendor whose model it is: a
    Mistral model sent on the OpenAI wire is priced as Mistral's (genai-prices matches its name)."""
    from genai_prices import calc_price

    try:
        return calc_price(usage, model, provider_id=provider)
    except LookupError:
        return calc_price(usage, model)


def _as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class Pricer:
    """Turns usage into USD. Thread-safe; resolves each model once per day."""

    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None) -> None:
        self._overrides: dict[str, FlatPrice] = {}
        self._resolved: dict[tuple[str, str, int], FlatPrice | str | None] = {}
        self._lock = threading.Lock()
        for model, prices in (overrides or {}).items():
            self.set_override(model, prices)

    def set_override(self, model: str, prices: Mapping[str, Any]) -> None:
        """Prices for a local or custom model, in USD per million tokens."""
        unknown = set(prices) - _FLAT_KEYS
        if unknown or "input_mtok" not in prices or "output_mtok" not in prices:
            raise ValueError(
                f"llmguard: price override for {model!r} needs input_mtok and output_mtok "
                f"(USD per million tokens), optionally cache_read_mtok and cache_write_mtok; got {sorted(prices)}"
            )
        self._overrides[model] = FlatPrice(**{k: _as_decimal(v) for k, v in prices.items()})

    def _resolve(self, provider: str, model: str) -> FlatPrice | str | None:
        """FlatPrice, "genai" (priced by genai-prices on each call), or None (unknown model)."""
        key = (provider, model, int(time.time() // 86400))  # the UTC day: date.today() costs ~2 us a call
        try:
            return self._resolved[key]  # never removed: no lock needed to read it
        except KeyError:
            pass
        from genai_prices import Usage as GenaiUsage

        try:
            calc = _calc(GenaiUsage(input_tokens=1, output_tokens=1), model, provider)
        except LookupError:
            result: FlatPrice | str | None = None
        else:
            prices = {k: v for k, v in vars(calc.model_price).items() if v is not None and not k.startswith("_")}
            flat = set(prices) - _IGNORABLE <= _FLAT_KEYS and all(
                isinstance(prices[k], Decimal) for k in prices if k in _FLAT_KEYS
            )
            if flat and "input_mtok" in prices and "output_mtok" in prices:
                result = FlatPrice(**{k: prices[k] for k in _FLAT_KEYS if k in prices})
            else:
                result = "genai"
        with self._lock:
            self._resolved[key] = result
        return result

    def price_of(self, provider: str, model: str) -> FlatPrice | str | None:
        return self._overrides.get(model) or self._resolve(provider, model)

    def known(self, provider: str, model: str) -> bool:
        return self.price_of(provider, model) is not None

    def cost(self, provider: str, model: str, usage: Usage) -> Decimal | None:
        """USD for this usage, or None when the model has no known price."""
        price = self.price_of(provider, model)
        if price is None:
            return None
        if isinstance(price, FlatPrice):
            total = price.cost(usage)
            if total is not None:
                return total
            if model in self._overrides:
                return None
        try:
            return genai_cost(provider, model, usage)
        except LookupError:
            return None

    def worst_case(
        self, provider: str, model: str, prompt_tokens: int, max_tokens: int, cache_write_ttl: str | None = None
    ) -> Decimal | None:
        """The most a call can cost: every allowed output token used, and every prompt token either
        uncached or, when the call asks for prompt caching (`cache_write_ttl` "5m"/"1h"), written to
        the cache, which costs more than plain input (1.25x for 5 minutes, 2x for an hour)."""
        plain = self.cost(provider, model, Usage(input_tokens=prompt_tokens, output_tokens=max_tokens))
        if cache_write_ttl is None or plain is None or not prompt_tokens:
            return plain
        written = Usage(
            input_tokens=prompt_tokens,
            cache_write_tokens=prompt_tokens,
            cache_write_1h_tokens=prompt_tokens if cache_write_ttl == "1h" else 0,
            output_tokens=max_tokens,
        )
        try:
            as_writes = self.cost(provider, model, written)
        except Exception:  # a price list without cache writes: plain input is the bound
            as_writes = None
        return plain if as_writes is None else max(plain, as_writes)


_default: Pricer | None = None


def default_pricer() -> Pricer:
    global _default
    if _default is None:
        _default = Pricer()
    return _default


def cost_usd(provider: str, model: str, usage: Usage) -> Decimal | None:
    return default_pricer().cost(provider, model, usage)


def override_hint(model: str) -> str:
    return (
        f"add a price for it, e.g. llmguard.install(prices={{{model!r}: "
        "{'input_mtok': 0.15, 'output_mtok': 0.60}}) or [tool.llmguard.prices] in pyproject.toml"
    )
