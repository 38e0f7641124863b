"""How reports write a duration given in milliseconds (`850 ms`, `1.25 s`): one function, three styles."""

from __future__ import annotations


def ms(value: float | None, none: str = "—", digits: int = 2, grouped: bool = True) -> str:
    """`850 ms` below a second, else seconds with `digits` decimals; `none` when unknown.

    `grouped` writes thousands separators (`1,250.00 s`): the HTML report does, the alerts and
    the readiness check do not.
    """
    if value is None:
        return none
    sep = "," if grouped else ""
    return f"{value / 1000:{sep}.{digits}f} s" if value >= 1000 else f"{value:{sep}.0f} ms"
