"""The arithmetic of one book, applied atomically by every store (`redis_lua.py` repeats it in Lua).

A book is `base + added` spent money plus leases, one per holder (amount, what its calls in flight
hold, expiry). The invariant: `spent + sum(leases) <= limit`, because a lease only ever grows into
`limit - spent - others`. A lease past its expiry is dropped and what its calls in flight held is
counted as spent (they may have been billed); the rest of it is free again.

`base` and `added` are kept apart for recovery: when a store loses a book (a Redis restart without
persistence), each surviving process reports the total it last saw (`known`); the rebuilt book takes
the largest such total as `base` (totals only grow, so the largest contains every smaller one) and
adds each process's unreported spend once to `added`.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmguard.store import Grant, SyncRequest

EPSILON = 1e-12  # float slack when comparing money (amounts are USD or tokens)


@dataclass
class Book:
    gen: str
    base: float = 0.0
    added: float = 0.0

    @property
    def spent(self) -> float:
        return self.base + self.added


@dataclass
class Lease:
    amount: float
    used: float  # held by calls in flight at the holder's last sync
    expires: float


def apply(
    book: Book | None, leases: dict[str, Lease], req: SyncRequest, now: float, new_gen: str, share: float
) -> tuple[Book, Grant]:
    """Apply `req` to `book` and `leases` (both changed in place; a new book is returned if none)."""
    charge = 0.0
    for holder in [h for h, lease in leases.items() if lease.expires <= now]:
        charge += leases.pop(holder).used
    others = sum(lease.amount for holder, lease in leases.items() if holder != req.holder)
    live = any(holder != req.holder for holder in leases)
    if book is None:  # new, or lost by the store: a process that knew it rebuilds its total
        book = Book(new_gen, base=req.known if req.gen is not None else req.seed)
    else:
        book.added += charge
        if req.gen is not None and req.gen != book.gen:
            book.base = max(book.base, req.known)  # it knew a book the store lost meanwhile
        elif req.gen is None and req.fresh_when_idle and not live and req.holder not in leases:
            book = Book(new_gen, base=req.seed)  # nobody holds it: a new session starts
    book.added += req.spent_delta
    spent = book.spent
    avail = req.limit - spent - others - req.hold
    granted = req.need <= 0 or avail + EPSILON >= req.need
    extra = 0.0
    if granted:
        extra = min(req.want, max(req.need, avail * share))
        extra = max(0.0, min(extra, avail))
    amount = req.hold + extra
    if req.leave and amount <= 0:
        leases.pop(req.holder, None)
    else:
        leases[req.holder] = Lease(amount, req.hold, now + req.ttl_s)
    return book, Grant(amount, spent, others, book.gen, granted)
