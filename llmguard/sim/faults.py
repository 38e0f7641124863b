"""Fault injection: which failure, if any, the next request gets.

Either a dict of probabilities (`{"429": 0.1, "500": 0.05}`, drawn from a seeded RNG so a run can be
replayed) or an exact script consumed one per request (`["429", "500", "ok", "hang"]`), after which
requests are answered normally. Scripts make retry and fallback tests exact; probabilities make
rehearsals look like a bad day at the provider.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping

KINDS = ("429", "500", "503", "529", "hang", "drop", "malformed", "cut", "no_usage", "echo_key", "quota", "ok")

Faults = Mapping[str, float] | Iterable[str] | None


def _kind(value: object) -> str:
    kind = str(value)
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {value!r}: use one of {', '.join(KINDS)}")
    return kind


class FaultPlan:
    """Thread-safe source of fault decisions. `next()` returns a kind, or None for a normal answer."""

    def __init__(self, faults: Faults = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._probabilities: list[tuple[str, float]] = []
        self._script: deque[str] = deque()
        if faults is None:
            return
        if isinstance(faults, Mapping):
            total = 0.0
            for kind, p in faults.items():
                p = float(p)
                if not 0.0 <= p <= 1.0:
                    raise ValueError(f"fault probability for {kind!r} must be between 0 and 1, got {p}")
                total += p
                self._probabilities.append((_kind(kind), p))
            if total > 1.0 + 1e-9:
                raise ValueError(f"fault probabilities add up to {total:.3f}; they must add up to at most 1")
        elif isinstance(faults, str):
            raise TypeError("faults must be a dict of probabilities or a list of kinds, not a string")
        else:
            self._script.extend(_kind(k) for k in faults)

    @property
    def empty(self) -> bool:
        return not self._probabilities and not self._script

    def next(self) -> str | None:
        if self.empty:
            return None
        with self._lock:
            if self._script:
                kind = self._script.popleft()
                return None if kind == "ok" else kind
            if not self._probabilities:
                return None
            draw = self._rng.random()
            for kind, p in self._probabilities:
                if draw < p:
                    return None if kind == "ok" else kind
                draw -= p
            return None
