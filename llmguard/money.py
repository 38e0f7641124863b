"""How amounts and counts read, everywhere: one money format, plural nouns, a dash for nothing.

Single LLM calls cost fractions of a cent, so a fixed number of decimals either reads as "$0.0000"
or drowns dollars in digits. Amounts under $1 keep three significant digits (never rounded to 0);
$1 and more show cents. Counts read as "1 call" and "2 calls", durations as "2.1 s", and a value that is missing (no
feature tag, no latency yet) reads as "—", never as `None`. Imports nothing, so any layer (budget,
magics, reports) can use it.
"""

from __future__ import annotations

import math

SIGNIFICANT = 3
DASH = "—"  # what a missing value reads as (not "None", not "(no feature)")


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


def plural(number: float, noun: str, plural_noun: str | None = None) -> str:
    """`1 call`, `2 calls`, `0 calls`, `1,204 tokens`; `plural_noun` for irregular nouns (`1 entry`, `2 entries`)."""
    shown = f"{number:,}" if isinstance(number, int) or float(number).is_integer() else f"{number:,.1f}"
    shown = shown.removesuffix(".0")
    word = noun if number == 1 else plural_noun or noun + "s"
    return f"{shown} {word}"


def duration(seconds: float) -> str:
    """`340 ms`, `2.1 s`, `42 s`, `3 min 5 s`, `12 min`, `1 h 20 min`: as precise as a person reads it."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 10:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def or_dash(value: object) -> str:
    """`value` as text, or `—` when there is none (None or an empty string)."""
    return DASH if value is None or value == "" else str(value)
