"""The items of `llmguard check`: the seed article's production readiness checklist, each judged from
the evidence (settings, lint findings, ledger figures) as pass, fail or n/a, with the reason and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llmguard.money import usd
from llmguard.reporting.evidence import SLOW_UNSTREAMED_MS, Evidence
from llmguard.reporting.units import ms as _ms_units


@dataclass
class Item:
    number: int  # 1..15 as in the seed's checklist; 0 for the precondition that the guard runs
    title: str
    status: str  # pass | fail | n/a
    reason: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def guard_item(ev: Evidence, guarded: bool) -> Item:
    title = "llmguard guards the calls (the controls below apply to guarded calls only)."
    if not getattr(ev.settings, "enabled", True):
        return Item(
            0,
            title,
            "fail",
            "enabled=false in the settings: calls pass through unguarded",
            "remove `enabled = false` from [tool.llmguard] (or LLMGUARD_ENABLED)",
        )
    if not guarded:
        return Item(
            0,
            title,
            "fail",
            f"no `llmguard.install()` or `%load_ext llmguard` in the code under {ev.root}, and no calls in {ev.ledger}",
            "call `llmguard.install()` at start-up (scripts, services) or run `%load_ext llmguard` (notebooks)",
        )
    where = f"installed in {', '.join(ev.installs[:3])}" if ev.installs else "the ledger holds guarded calls"
    return Item(0, title, "pass", where + of_calls(ev, "calls", "recorded in 30 days"))


def _models_hint(ev: Evidence) -> str:
    return ev.models[0] if ev.models else "gpt-4o-mini"


def limit_item(ev: Evidence, number: int, unit: str, title: str) -> Item:
    limits = getattr(ev.settings, "limits", None) or {}
    covered = {m for m, spec in limits.items() if spec.get(unit)}
    fix = (
        f'add [tool.llmguard.limits] "{_models_hint(ev)}" = {{rpm = 500, tpm = 200000}} with your provider tier\'s '
        "numbers, so calls queue before the provider refuses them"
    )
    if not covered:
        learnt = (
            " (limits are only learnt from provider headers after the first responses)"
            if getattr(ev.settings, "learn_limits", False)
            else ""
        )
        return Item(number, title, "fail", f"no {unit.upper()} limit is configured{learnt}", fix)
    missing = [m for m in ev.models if m not in covered]
    if missing:
        return Item(
            number,
            title,
            "fail",
            f"models used without a {unit.upper()} limit: {', '.join(missing[:5])}",
            fix.replace(_models_hint(ev), missing[0]),
        )
    return Item(number, title, "pass", f"{unit.upper()} limits for {', '.join(sorted(covered))}")


def quota_item(ev: Evidence) -> Item:
    title = "Per-user or tenant quotas are defined."
    quotas = [k for k in (getattr(ev.settings, "quotas", None) or {}) if k.split(":", 1)[0] in ("tenant", "user")]
    fix = (
        'add [tool.llmguard.quotas] "tenant:NAME" = {usd_per_day = 5.0} (or "user:NAME") and tag calls with '
        "llmguard.tag(tenant=..., user=...)"
    )
    if not quotas:
        return Item(3, title, "fail", "no tenant or user quota in the settings", fix)
    store = ev.store or {}
    if store and not store.get("reachable", True):
        return Item(
            3,
            title,
            "fail",
            f"quotas are shared through the store {store['label']}, which cannot be reached "
            f"({store.get('reason')}): calls that need more money from it are refused",
            'start the store or fix its address (store = ...), or set store = "local" to share quotas on '
            "this machine only",
        )
    calls = ev.calls.get("calls", 0)
    for kind in ("tenant", "user"):
        if calls and any(q.startswith(kind + ":") for q in quotas) and not ev.calls.get(f"with_{kind}"):
            return Item(
                3,
                title,
                "fail",
                f"quotas exist for {kind}s, but none of the {calls:,} recorded calls carries "
                f"a {kind} tag, so they never apply",
                f"tag calls with llmguard.tag({kind}=...)",
            )
    shared = f", shared through {store['label']}" if store.get("kind") in ("local", "redis") else ""
    return Item(3, title, "pass", f"quotas: {', '.join(quotas[:4])}{shared}")


def recorded_item(ev: Evidence, number: int, title: str, recorded: bool, no_guard: str, how: str) -> Item:
    if not getattr(ev.settings, "ledger", True):
        return Item(
            number, title, "fail", "ledger=false: no call is recorded", "remove `ledger = false` from [tool.llmguard]"
        )
    if not recorded:
        return Item(number, title, "fail", no_guard, "install the guard (see the first line)")
    return Item(number, title, "pass", how)


def cost_item(ev: Evidence, recorded: bool, no_guard: str) -> Item:
    title = "Cost is tracked by feature, model, or tenant."
    item = recorded_item(ev, 5, title, recorded, no_guard, "")
    if item.status == "fail":
        return item
    if ev.unpriced:
        model, n = next(iter(ev.unpriced.items()))
        return Item(
            5,
            title,
            "fail",
            "cost is unknown for " + ", ".join(f"{m} ({c:,} calls)" for m, c in ev.unpriced.items()),
            f'add its price: [tool.llmguard.prices] "{model}" = {{input_mtok = ..., output_mtok = ...}}',
        )
    tagged = ev.calls.get("tagged", 0)
    calls = ev.calls.get("calls", 0)
    detail = f"; {tagged / calls:.0%} of calls carry a feature or tenant tag" if calls else ""
    return Item(
        5,
        title,
        "pass",
        "every call is priced and recorded by model" + detail,
        ""
        if not calls or tagged == calls
        else "tag calls with llmguard.tag(feature=..., tenant=...) to split cost by feature and tenant",
    )


def _findings(ev: Evidence, prefixes: tuple[str, ...]) -> list[Any]:
    return [f for f in ev.findings if f.code.startswith(prefixes)]


def _where(findings: list[Any]) -> str:
    shown = [
        f"{f.code} {f.path}:" + (f"cell {f.cell}:" if getattr(f, "cell", None) else "") + str(f.line)
        for f in findings[:3]
    ]
    more = f" and {len(findings) - 3} more" if len(findings) > 3 else ""
    return ", ".join(shown) + more


def _lint_note(ev: Evidence) -> str:
    return f" (the linter could not run: {ev.lint_error})" if ev.lint_error else ""


def length_item(ev: Evidence) -> Item:
    title = "Prompt and output length limits are set."
    unbounded = _findings(ev, ("LG3",))
    prompts = _findings(ev, ("LG4",))
    default = getattr(ev.settings, "default_max_tokens", None)
    problems, fixes = [], []
    if unbounded and default is None:
        problems.append(f"calls without a max-tokens bound: {_where(unbounded)}")
        fixes.append("pass max_tokens on each call (or set default_max_tokens in [tool.llmguard])")
    if prompts:
        problems.append(f"oversized or unbounded prompts: {_where(prompts)}")
        fixes.append("trim the templates and cap the documents they include (see `llmguard rule LG401`)")
    if problems:
        return Item(6, title, "fail", "; ".join(problems), "; ".join(fixes))
    how = "the linter finds no unbounded output or oversized prompt"
    if default is not None:
        how += f"; default_max_tokens={default} bounds calls that set none"
    return Item(6, title, "pass", how + _lint_note(ev))


def cache_item(ev: Evidence, guarded: bool, no_guard: str) -> Item:
    title = "Cache strategy is defined."
    mode = getattr(ev.settings, "cache", None)
    if mode is None:
        return Item(7, title, "fail", "this llmguard has no response cache setting", "upgrade llmguard")
    if mode == "off":
        return Item(
            7,
            title,
            "fail",
            "cache=off: identical deterministic calls are paid for again",
            'set cache = "on" in [tool.llmguard] (or "read" in CI); opt calls out with llmguard.tag(cache="off")',
        )
    if not guarded:
        return Item(7, title, "fail", no_guard, "install the guard (see the first line)")
    ttl = getattr(ev.settings, "cache_ttl_s", None)
    hits = ev.calls.get("cache_hits", 0)
    return Item(
        7,
        title,
        "pass",
        f"cache={mode}"
        + (f", ttl {ttl / 3600:g} h" if ttl else "")
        + (f"; {hits:,} hits saved {usd(ev.calls.get('saved_usd', 0.0))} in 30 days" if hits else ""),
    )


def dedup_item(ev: Evidence, guarded: bool, no_guard: str) -> Item:
    title = "Duplicate requests are deduplicated where possible."
    mode = getattr(ev.settings, "cache", None)
    if mode in (None, "off", "write", "refresh") or getattr(ev.settings, "dedup", True) is False:
        return Item(
            8,
            title,
            "fail",
            f"in-flight deduplication rides on cache reads, and cache={mode}",
            'set cache = "on" so identical calls in flight wait for the first one',
        )
    if not guarded:
        return Item(8, title, "fail", no_guard, "install the guard (see the first line)")
    hits = ev.calls.get("dedup_hits", 0)
    return Item(
        8,
        title,
        "pass",
        "identical cacheable calls in flight share one request"
        + (f" ({hits:,} deduplicated in 30 days)" if hits else ""),
    )


def retry_item(ev: Evidence) -> Item:
    title = "Retry budget and backoff policy are defined."
    s = ev.settings
    problems, fixes = [], []
    if getattr(s, "retry_budget", None) is None:
        problems.append("retry_budget is off: during an outage every call retries")
        fixes.append("set retry_budget = 0.2 in [tool.llmguard]")
    if getattr(s, "backoff_base_s", 0) <= 0:
        problems.append("backoff_base_s is 0: retries are immediate")
        fixes.append("set backoff_base_s = 0.5")
    found = _findings(ev, ("LG1",))
    if found:
        problems.append(f"unbounded or unpaced retries in the code: {_where(found)}")
        fixes.append("bound them (stop=/max_tries=, a counter) with backoff, or leave retries to llmguard")
    if problems:
        return Item(9, title, "fail", "; ".join(problems), "; ".join(fixes))
    return Item(
        9,
        title,
        "pass",
        f"max_attempts={s.max_attempts}, exponential backoff from {s.backoff_base_s:g} s "
        f"(cap {s.backoff_max_s:g} s), retry budget {s.retry_budget:.0%} of calls" + _lint_note(ev),
    )


def timeout_item(ev: Evidence, guarded: bool) -> Item:
    title = "Timeout budgets are set for model calls and tools."
    timeout = getattr(ev.settings, "timeout_s", None)
    found = _findings(ev, ("LG2",))
    # A client built without timeout= (LG201) keeps the SDK's 600 s, which the guard replaces with
    # timeout_s on every call it sees: covered wherever the guard runs and timeout_s is set.
    covered = [f for f in found if f.code == "LG201"] if guarded and timeout is not None else []
    found = [f for f in found if f.code != "LG201"] if covered else found
    capped = (
        (
            f"the guard caps every call at timeout_s={timeout:g} s, so clients without timeout= "
            f"({_where(covered)}) do not wait the SDK's 600 s"
        )
        if covered
        else ""
    )
    problems, fixes = [], []
    if timeout is None:
        problems.append("timeout_s is unset: the SDKs wait up to 600 s")
        fixes.append("set timeout_s = 60 in [tool.llmguard]")
    if found:
        problems.append(f"clients or requests without a sane timeout: {_where(found)}")
        fixes.append(
            "pass timeout= to the clients and HTTP calls (tools too); bound workflow steps with "
            "llmguard.step(name, timeout=...)"
        )
    if problems:
        return Item(11, title, "fail", "; ".join(problems + ([capped] if capped else [])), "; ".join(fixes))
    steps = "; steps are measured with llmguard.step" if ev.calls.get("with_steps") else ""
    how = (
        f"{capped}; the linter finds no other missing or huge timeout"
        if capped
        else f"timeout_s={timeout:g}; the linter finds no missing or huge timeout"
    )
    return Item(11, title, "pass", how + steps + _lint_note(ev))


def stream_item(ev: Evidence, guarded: bool) -> Item:
    title = "Streaming is used where it improves user experience."
    calls = ev.calls
    if not guarded or not calls.get("calls"):
        return Item(
            12,
            title,
            "n/a",
            "no recorded interactive calls to judge yet",
            "run the workload with the guard installed, then check again",
        )
    slow, unstreamed = calls.get("slow_unstreamed", 0), calls.get("unstreamed", 0)
    if unstreamed and slow / max(1, unstreamed + calls.get("streamed", 0)) > 0.1:
        return Item(
            12,
            title,
            "fail",
            f"{slow:,} interactive answers took over {SLOW_UNSTREAMED_MS / 1000:g} s without streaming",
            "stream them (stream=True / client.messages.stream) so users see the first tokens early",
        )
    return Item(
        12,
        title,
        "pass",
        f"{calls.get('streamed', 0):,} streamed calls; few slow unstreamed answers "
        f"({slow:,} over {SLOW_UNSTREAMED_MS / 1000:g} s)",
    )


def fallback_item(ev: Evidence) -> Item:
    title = "Fallback or degraded mode exists for provider failure."
    chains = getattr(ev.settings, "fallbacks", None) or {}
    stale = bool(getattr(ev.settings, "serve_stale", False))
    fix = f'add [tool.llmguard.fallbacks] "{_models_hint(ev)}" = ["<a cheaper or other-provider model>"]'
    if not chains and not stale:
        return Item(13, title, "fail", "no fallback models and serve_stale is off", fix)
    missing = [m for m in ev.models if m not in chains]
    if missing and not stale:
        return Item(
            13,
            title,
            "fail",
            f"models used without a fallback: {', '.join(missing[:5])}",
            fix.replace(_models_hint(ev), missing[0]),
        )
    parts = [f"fallbacks for {', '.join(sorted(chains))}"] if chains else []
    parts += ["stale cached answers are served when the provider is down"] if stale else []
    return Item(13, title, "pass", "; ".join(parts))


def latency_item(ev: Evidence, recorded: bool, no_guard: str) -> Item:
    title = "p95 and p99 latency are tracked."
    item = recorded_item(ev, 15, title, recorded, no_guard, "")
    if item.status == "fail":
        return item
    calls = ev.calls.get("calls", 0)
    if calls and not ev.calls.get("with_total"):
        return Item(
            15,
            title,
            "fail",
            f"none of the {calls:,} recorded calls has a latency",
            "upgrade llmguard; latency is recorded for every completed call",
        )
    lat = ev.latency
    if lat.get("p95_ms") is not None:
        return Item(
            15,
            title,
            "pass",
            f"p95 {ms(lat['p95_ms'])}, p99 {ms(lat['p99_ms'])} over "
            f"{lat['calls']:,} calls in 30 days (`llmguard report` breaks them down by step)",
        )
    return Item(
        15,
        title,
        "pass",
        "every call's latency (queue, retries, model, first token, total, steps) is "
        "recorded; `llmguard report` shows p50/p95/p99",
    )


def of_calls(ev: Evidence, key: str, label: str) -> str:
    calls = ev.calls.get("calls", 0)
    if not calls:
        return ""
    return f" ({ev.calls.get(key, 0):,} of {calls:,} calls {label})" if key != "calls" else f" ({calls:,} {label})"


def ms(value: float | None) -> str:
    """`850 ms`, `1.25 s`, `-` when unknown."""
    return _ms_units(value, none="-", grouped=False)
