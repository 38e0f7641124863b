"""The simulated provider's bill: genai-prices' own `calc_price`, never `llmguard.policies.pricing`.

Each answered call is priced once, from the usage the simulator reported on the wire, with the
offline snapshot genai-prices ships (it is never updated at run time). The price used for each model
is kept so the stats can say which prices the bill came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class BilledUsage:
    """What the simulator billed. `input_tokens` counts every prompt token, cached or written too
    (genai-prices' convention); `cache_write_1h_tokens` is the part of the writes kept for an hour."""

    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Bill:
    cost: Decimal | None  # None: genai-prices does not know the model
    price: dict[str, Any] | None  # which prices were used, JSON-ready


def _genai_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


def price_call(provider: str, model: str, usage: BilledUsage) -> Bill:
    from genai_prices import Usage, calc_price

    genai_usage = Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cached_tokens or None,
        cache_write_tokens=usage.cache_write_tokens or None,
        cache_write_1h_tokens=usage.cache_write_1h_tokens or None,
        output_tokens=usage.output_tokens,
    )
    try:
        calc = calc_price(genai_usage, model, provider_id=provider)
    except LookupError:
        # a model another vendor serves on this wire (Mistral's chat API is OpenAI-shaped): billed
        # at its own vendor's price, which genai-prices finds by the model's name
        try:
            calc = calc_price(genai_usage, model)
        except LookupError:
            return Bill(None, None)
    price = {
        "source": f"genai-prices {_genai_version()} (bundled snapshot)",
        "provider": calc.provider.id,
        "model": calc.model.id,
        "model_price": str(calc.model_price),
    }
    return Bill(calc.total_price, price)
