"""The arithmetic of one shared rate limit, applied atomically by every store (`rates_lua.py` in Lua).

A rate book is one key's (a model's) two token buckets, requests and tokens, each `level` refilled
continuously at `limit / window_s` from `stamp`, plus the *leases* processes hold: capacity taken
out of the bucket that only that process may spend, locally and without a round trip
(`rates_lease.py`). Like GCRA (redis-cell, the `limits` library), the state is a few numbers per key
and one atomic step per change; unlike GCRA's single arrival time, a bucket keeps leases apart
because a lease is spent after it was taken.

Why no process can over-admit: a lease is the holder's unspent capacity *plus its calls in flight*
(admitted, not yet answered), and the bucket never refills past `limit - leases` (its *room*). A
call in flight may not have reached the provider yet, so the provider's bucket has not been charged
for it and may sit at its cap, losing refill; counting it in the room keeps `level + in flight`
within the cap, so the store's level never exceeds what the provider's bucket will hold when the
call arrives, however late it arrives (a CPU-starved process, a slow connection). A call leaves the
lease when its holder reports it answered. A take also leaves `margin_s` of refill in the bucket,
as the single-process limiter does. The price: capacity of calls in flight is not lent again until
they are answered, which costs only while the bucket is near full.

A lease past its TTL belonged to a process that stopped renewing it (killed): it is dropped and
counted as spent at the moment its holder could last spend it (`usable`, 80% of the TTL after its
last renewal), so what the provider refilled since then is free again at once, the rest as it
refills. A book the store lost (a Redis restart) is rebuilt empty, and closed for `REJOIN_S`, by
the first process that knew it, and a process coming back from an outage empties it too: processes
admitted calls on their own meanwhile, so the provider's bucket may be low.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

SHARE = 0.5  # a process tops its lease up with at most this part of what is free while others hold leases
# A rebuilt book grants nothing for this long: longer than a process in fallback waits to retry the
# store (`rates_lease.RETRY_S`, the Redis store's circuit), so every process still admitting on its
# own share is back on the book (its resync empties the bucket) before anyone takes from it.
REJOIN_S = 1.2  # two retry periods: a retry may land just inside the circuit and wait one more
EPS = 1e-9


@dataclass(frozen=True)
class RateRequest:
    """One atomic step on one rate book. Pairs are (requests, tokens); a cap of 0 is not limited.

    `used` is what this process's calls answered since its last sync (it leaves the lease), `hold`
    what its calls in flight were admitted with (it stays), `need` the unspent lease the call
    waiting on it needs (0: none waits), `want` the unspent lease it would like to hold (its
    recent demand: more is given back, less is topped up from what is free).
    """

    key: str
    holder: str
    caps: tuple[float, float]
    window_s: float
    used: tuple[float, float] = (0.0, 0.0)
    hold: tuple[float, float] = (0.0, 0.0)
    need: tuple[float, float] = (0.0, 0.0)
    want: tuple[float, float] = (0.0, 0.0)
    ttl_s: float = 10.0
    valid_s: float = 8.0  # the holder spends the lease for this long after the sync, at most
    margin_s: float = 0.005
    gen: str | None = None  # the book's generation as this process last saw it
    pause_s: float = 0.0  # the provider answered 429: nobody takes for this long
    resync: bool = False  # this process admitted calls on its own while the store was unreachable
    leave: bool = False  # give everything back and drop the lease
    keep_s: float = 86400.0  # how long a book no one touches is kept (Redis expiry)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class RateGrant:
    held: tuple[float, float]  # this process's unspent lease now (its calls in flight not included)
    granted: bool  # the `need` was met
    wait_s: float  # when not: seconds until it may be
    gen: str
    holders: int  # processes holding a lease on this book, this one included

    @classmethod
    def from_json(cls, text: str) -> RateGrant:
        d = json.loads(text)
        return cls(
            (float(d["held"][0]), float(d["held"][1])),
            bool(d["granted"]),
            float(d["wait_s"]),
            str(d["gen"]),
            int(d["holders"]),
        )


def new_book(req: RateRequest, now: float, gen: str) -> dict[str, Any]:
    """A book starts full, unless a process knew one the store lost: then empty (see the docstring)."""
    lost = req.gen is not None
    hold = now + REJOIN_S if lost else 0.0
    return {"gen": gen, "hold": hold, "dims": [[0.0 if lost else c, now] for c in req.caps], "leases": {}}


def apply_rates(
    book: dict[str, Any] | None, req: RateRequest, now: float, gen: str
) -> tuple[dict[str, Any], RateGrant]:
    """Apply `req` to `book` (changed in place; a new one is made if None). `now` is the store's clock."""
    if book is None:
        book = new_book(req, now, gen)
    dims, leases = book["dims"], book["leases"]
    rates = [c / req.window_s for c in req.caps]
    credit = [0.0, 0.0]
    for holder in [h for h, lease in leases.items() if lease[2] <= now]:
        lease = leases.pop(holder)
        for i in (0, 1):
            credit[i] += min(lease[i], max(0.0, now - lease[3]) * rates[i])
    mine = leases.pop(req.holder, None)
    amount = [max(0.0, mine[i] - req.used[i]) if mine is not None else 0.0 for i in (0, 1)]
    hold = [min(req.hold[i], amount[i]) if mine is not None else 0.0 for i in (0, 1)]
    if req.pause_s > 0:  # the provider's bucket is empty: the unspent lease was not there
        amount = hold
    unspent = [amount[i] - hold[i] for i in (0, 1)]
    others = [sum(lease[i] for lease in leases.values()) for i in (0, 1)]
    if req.pause_s > 0:
        book["hold"] = max(book["hold"], now + req.pause_s)
    for i in (0, 1):
        level, stamp = dims[i]
        if now > stamp:
            level += (now - stamp) * rates[i]
        level += credit[i]
        if req.pause_s > 0 or req.resync:
            level = min(level, 0.0)
        dims[i] = [min(level, req.caps[i] - others[i] - amount[i]), now]
    target = [0.0, 0.0] if req.leave else [max(req.want[i], req.need[i]) for i in (0, 1)]
    for i in (0, 1):
        if unspent[i] > target[i]:
            dims[i][0] += unspent[i] - target[i]
            unspent[i] = target[i]
    short = [max(0.0, req.need[i] - unspent[i]) if req.caps[i] > 0 else 0.0 for i in (0, 1)]
    margin = [0.0, 0.0]
    for i in (0, 1):
        if short[i] + rates[i] * req.margin_s <= req.caps[i] - others[i] - hold[i]:
            margin[i] = rates[i] * req.margin_s
    wait = 0.0
    if now < book["hold"]:
        wait = book["hold"] - now
    for i in (0, 1):
        missing = short[i] + margin[i] - dims[i][0]
        if short[i] > 0 and missing > EPS:
            wait = max(wait, missing / rates[i], 0.001)
    granted = wait == 0.0
    if granted:  # the need is met from what is free, and the lease topped up toward `want`
        for i in (0, 1):
            if req.caps[i] <= 0:
                continue
            free = dims[i][0] - margin[i]
            part = free * (SHARE if leases else 1.0)
            take = min(max(short[i], min(target[i] - unspent[i], part)), max(free, short[i]))
            if take > EPS:
                dims[i][0] -= take
                unspent[i] += take
    total = [hold[0] + unspent[0], hold[1] + unspent[1]]
    if not (req.leave and total[0] <= EPS and total[1] <= EPS):
        leases[req.holder] = [total[0], total[1], now + req.ttl_s, now + req.valid_s]
    holders = max(1, len(leases))
    return book, RateGrant((unspent[0], unspent[1]), granted, 0.0 if granted else wait, book["gen"], holders)
