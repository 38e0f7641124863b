"""One way to show an amount of US dollars, used by refusals, summaries, widgets and the checklist.

Single LLM calls cost fractions of a cent, so a fixed number of decimals either reads as "$0.0000"
or drowns dollars in digits. Amounts under $1 keep three significant digits (never rounded to 0);
$1 and more show cents. Imports nothing, so any layer (budget, magics, reports) can use it.
"""

from __future__ import annotations

import math

SIGNIFICANT = 3


def usd(value: float | None) -> str:
    """`$0.000075`, `$0.123`, `$0.50`, `$1.23`, `$1,234.50`; `?` when the amount is unknown."""
    if value is None:
        return "?"
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return "$0.00" if value == 0 else f"${value}"
    sign, value = ("-", -value) if value < 0 else ("", value)
    if round(value, 2) >= 1:
        return f"{sign}${value:,.2f}"
    # decimals that keep SIGNIFICANT digits of this amount: 0.000075 has its first digit at place 5
    first = -math.floor(math.log10(value))
    text = f"{value:.{max(2, first + SIGNIFICANT - 1)}f}"
    whole, _, decimals = text.partition(".")
    if whole != "0":  # 0.9996 rounds up to 1.00
        return f"{sign}${value:,.2f}"
    return f"{sign}$0.{decimals.rstrip('0').ljust(2, '0')}"
