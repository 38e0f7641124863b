"""Spend budgets and quotas, reservation-based so concurrent calls can never overspend.

Before a call is sent its worst case (every prompt token uncached, every allowed output token
used) is reserved against each scope it belongs to: the session budget and any tenant/user/feature
quota. After the response the reservation is replaced by the real cost. A call whose reservation
does not fit is refused (or sent to a fallback model) before it costs anything.

Limits shared by processes (the session budget and per-day quotas) keep their books in the store
(`llmguard/store/`): this process reserves against a lease, money the store holds for it alone, so
the processes sharing a store together never spend more than the limit (`store/lease.py` states
the bounds). Per-run quotas and a cell's `%%llmguard --budget` are this process's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmguard.money import usd
from llmguard.store import Store
from llmguard.store.lease import Leases, LeaseState, StoreRefusal

QUOTA_UNITS = ("usd_per_day", "usd_per_run", "tokens_per_day", "tokens_per_run")
QUOTA_SCOPES = ("tenant", "user", "feature")


SESSION_FIX = (
    "raise the session budget (llmguard.install(budget_usd=...), [tool.llmguard] budget_usd or %llmguard budget USD)"
)


@dataclass
class Scope:
    """One limit: spent + reserved must stay within `limit` (USD or tokens).

    `fix` is the advice a refusal gives for raising this very limit (it is set where the limit is:
    the session budget, a quota, a notebook cell's `%%llmguard --budget`), so a refusal never points
    to another knob.
    """

    name: str  # "session budget", "tenant:acme usd_per_day", ...
    limit: float
    unit: str  # "usd" | "tokens"
    spent: float = 0.0
    reserved: float = 0.0
    day: str | None = None  # for per-day quotas, the UTC day `spent` belongs to
    fix: str = ""  # e.g. "raise this cell's budget on its first line (%%llmguard --budget USD)"
    lease: LeaseState | None = None  # a limit shared through the store; `spent` is then everyone's

    def left(self) -> float:
        return self.limit - self.spent - self.reserved


@dataclass
class Reservation:
    scopes: list[tuple[Scope, float]] = field(default_factory=list)  # (scope, amount held)
    usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class BudgetRefusal:
    scope: str
    message: str


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def parse_quota_key(key: str) -> tuple[str, str]:
    kind, sep, value = key.partition(":")
    if not sep or kind not in QUOTA_SCOPES or not value:
        raise ValueError(f"llmguard: quota key {key!r} must look like 'tenant:NAME', 'user:NAME' or 'feature:NAME'")
    return kind, value


class Budget:
    """Session budget plus per-tenant/user/feature quotas. Thread-safe."""

    def __init__(
        self,
        budget_usd: float | None = None,
        quotas: dict[str, dict[str, float]] | None = None,
        spent_today: Any = None,
        allow_unpriced: bool = False,
        store: Store | None = None,
        lease_ttl_s: float = 10.0,
        store_failure: str = "closed",
    ) -> None:
        from llmguard.store.memory import ProcessStore

        self._lock = threading.Lock()
        self.leases = Leases(store or ProcessStore(), self._lock, lease_ttl_s, store_failure)
        self.session: Scope | None = None
        self._quotas = _parse_quotas(quotas)
        self._scopes: dict[str, Scope] = {}
        # spent_today(kind, value, unit) -> float: what the ledger already holds for today
        self._spent_today = spent_today
        # a call whose price is unknown cannot be held against a USD limit: refused unless allowed
        self.allow_unpriced = allow_unpriced
        self.set_session_budget(budget_usd)

    def reconfigure(
        self, budget_usd: float | None, quotas: dict[str, dict[str, float]] | None, allow_unpriced: bool
    ) -> None:
        """New limits on the same books: what was spent and what calls in flight hold stay counted."""
        parsed = _parse_quotas(quotas)
        with self._lock:
            self.allow_unpriced = allow_unpriced
            self._quotas = parsed
            for name, scope in self._scopes.items():
                kind_value, _, unit = name.partition(" ")
                kind, _, value = kind_value.partition(":")
                limit = parsed.get((kind, value), {}).get(unit)
                if limit is not None and scope.limit != float(limit):
                    scope.limit = float(limit)
                    if scope.lease is not None:
                        self.leases.void(scope)
        self.set_session_budget(budget_usd)

    @property
    def active(self) -> bool:
        return self.session is not None or bool(self._quotas)

    def set_session_budget(self, usd: float | None) -> None:
        with self._lock:
            if usd is None:
                if self.session is not None:
                    self.leases.forget(self.session)
                self.session = None
            elif self.session is None:
                self.session = _session_scope(usd)
                self.leases.join(self.session)
            elif self.session.limit != usd:
                self.session.limit = usd
                self.leases.void(self.session)

    def close(self) -> None:
        """Give the leases back to the store (unused money is free for other processes at once)."""
        self.leases.close()

    def store_status(self, ping: bool = False) -> dict[str, Any]:
        """Which store holds the shared books, and why the last exchange with it (or a ping) failed."""
        from llmguard.store import StoreUnavailable

        store, error = self.leases.store, self.leases.error
        if ping:
            try:
                store.ping()
                error = None
            except StoreUnavailable as exc:
                error = exc.reason
        return {"kind": store.kind, "label": store.label, "error": error}

    def _quota_scopes(self, tags: dict[str, Any]) -> list[Scope]:
        scopes = []
        for kind in QUOTA_SCOPES:
            value = tags.get(kind)
            if value is None or (kind, str(value)) not in self._quotas:
                continue
            for unit, limit in self._quotas[(kind, str(value))].items():
                name = f"{kind}:{value} {unit}"
                scope = self._scopes.get(name)
                today = _today() if unit.endswith("per_day") else None
                if scope is None or (today is not None and scope.day != today):
                    spent = 0.0
                    if today is not None and self._spent_today is not None:
                        spent = self._spent_today(kind, str(value), "usd" if unit.startswith("usd") else "tokens")
                    scope = Scope(
                        name,
                        float(limit),
                        "usd" if unit.startswith("usd") else "tokens",
                        spent=spent,
                        day=today,
                        fix=_quota_fix(f"{kind}:{value}", unit),
                    )
                    if today is not None:  # per-day quotas are shared; per-run ones are this process's
                        key = f"quota:{kind}:{value}:{unit}:{today}"
                        scope.lease = LeaseState(key, seed=spent, keep_s=3 * 86400.0)
                        self.leases.track(scope)
                    self._scopes[name] = scope
                scopes.append(scope)
        return scopes

    def reserve(
        self, usd: float | None, tokens: int, tags: dict[str, Any], extra: Sequence[Scope] = (), model: str = ""
    ) -> Reservation | BudgetRefusal:
        """Hold the worst case against every scope of this call, or say which scope cannot afford it."""
        with self._lock:
            scopes = ([self.session] if self.session else []) + self._quota_scopes(tags) + list(extra)
            held = []
            for scope in scopes:
                amount = float(tokens) if scope.unit == "tokens" else usd
                if amount is None:
                    if not self.allow_unpriced:
                        return BudgetRefusal(scope.name, _unpriced_message(scope, model))
                    continue  # allowed: admitted and counted at 0 against USD limits; tokens still are
                if scope.lease is not None:
                    verdict = self.leases.admit(scope, amount)
                    if isinstance(verdict, StoreRefusal):
                        return BudgetRefusal(scope.name, str(verdict))
                    if not verdict:
                        return BudgetRefusal(scope.name, _refusal_message(scope, amount))
                elif amount > scope.left() + 1e-12:
                    return BudgetRefusal(scope.name, _refusal_message(scope, amount))
                held.append((scope, amount))
            for scope, amount in held:
                scope.reserved += amount
            return Reservation(held, usd or 0.0, tokens)

    def settle(self, reservation: Reservation, usd: float | None, tokens: int) -> None:
        """Replace the reservation with what the call really cost (0 for a failure nothing billed)."""
        with self._lock:
            for scope, amount in reservation.scopes:
                scope.reserved = max(0.0, scope.reserved - amount)
                cost = float(tokens) if scope.unit == "tokens" else (usd or 0.0)
                scope.spent += cost
                if scope.lease is not None:
                    self.leases.spent(scope, cost)

    def snapshot(self) -> dict[str, dict[str, float | str]]:
        with self._lock:
            scopes = ([self.session] if self.session else []) + list(self._scopes.values())
            return {
                s.name: {"limit": s.limit, "spent": s.spent, "reserved": s.reserved, "unit": s.unit} for s in scopes
            }


def _parse_quotas(quotas: dict[str, dict[str, float]] | None) -> dict[tuple[str, str], dict[str, float]]:
    parsed: dict[tuple[str, str], dict[str, float]] = {}
    for key, units in (quotas or {}).items():
        kind, value = parse_quota_key(key)
        unknown = set(units) - set(QUOTA_UNITS)
        if unknown:
            raise ValueError(f"llmguard: quota {key!r} has unknown units {sorted(unknown)}; use {QUOTA_UNITS}")
        parsed[(kind, value)] = dict(units)
    return parsed


def _session_scope(limit: float) -> Scope:
    """The session budget: shared by the processes using one store while any of them runs (a book
    nobody holds any more starts over)."""
    return Scope("session budget", limit, "usd", fix=SESSION_FIX, lease=LeaseState("session", fresh_when_idle=True))


def _quota_fix(key: str, unit: str) -> str:
    """How to raise one quota, in code and in pyproject.toml."""
    return (
        f"raise the {key} quota (quotas={{{key!r}: {{{unit!r}: ...}}}} or "
        f'[tool.llmguard.quotas] "{key}" = {{{unit} = ...}})'
    )


def _unpriced_message(scope: Scope, model: str) -> str:
    return (
        f"llmguard: {model or 'this model'} has no known price, so the {scope.name} cannot bound what it "
        f"costs. Add its price, e.g. llmguard.install(prices={{{model!r}: {{'input_mtok': 0.15, "
        "'output_mtok': 0.60}}) or [tool.llmguard.prices], or set unpriced='allow' to send such calls "
        "and count them at $0."
    )


def _refusal_message(scope: Scope, amount: float) -> str:
    """What was spent against which limit, what this call could cost, and the knob of that limit."""
    raise_it = scope.fix or f"raise the {scope.name}"
    others = scope.lease.others if scope.lease is not None else 0.0
    if scope.unit == "usd":
        elsewhere = f", {usd(others)} held by other processes" if others > 0 else ""
        numbers = (
            f"spent {usd(scope.spent)} of {usd(scope.limit)}{' today (UTC)' if scope.day else ''}, "
            f"{usd(scope.reserved)} held by calls in flight{elsewhere}; this call could cost up to {usd(amount)}"
        )
        fix = f"{raise_it}, lower max_tokens, or use a cheaper model"
    else:
        elsewhere = f", {others:,.0f} held by other processes" if others > 0 else ""
        numbers = (
            f"used {scope.spent:,.0f} of {scope.limit:,.0f} tokens{' today (UTC)' if scope.day else ''}, "
            f"{scope.reserved:,.0f} held by calls in flight{elsewhere}; this call could use up to {amount:,.0f}"
        )
        fix = f"{raise_it}, lower max_tokens, or shorten the prompt"
    return f"llmguard: {scope.name} would be exceeded ({numbers}). To continue, {fix}."
