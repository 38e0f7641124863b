"""`llmguard check`: the seed article's production readiness checklist, evaluated for one project.

Evidence comes from three places: the project's settings (`[tool.llmguard]`), the linter's findings
on its code, and its ledger (what the guard actually recorded over the last 30 days). Settings only
matter for calls that go through the guard, so a first line checks that the code installs it.
Each line is pass, fail or n/a (nothing to judge yet), with the reason and the fix.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmguard.money import usd
from llmguard.reporting import report

LOOKBACK_S = 30 * 86400
SLOW_UNSTREAMED_MS = 2000.0  # interactive answers slower than this should stream
_INSTALL = re.compile(r"llmguard\s*\.\s*install\s*\(|load_ext\s+llmguard|from\s+llmguard\s+import\s+[^\n]*\binstall\b")


@dataclass
class Item:
    number: int  # 1..15 as in the seed's checklist; 0 for the precondition that the guard runs
    title: str
    status: str  # pass | fail | n/a
    reason: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """What the check knows about a project."""

    root: Path
    settings: Any
    pyproject: Path | None
    explicit: dict[str, Any]  # keys set in [tool.llmguard]
    ledger: Path
    installs: list[str] = field(default_factory=list)  # files that install the guard
    findings: list[Any] = field(default_factory=list)  # lint findings (code, path, line, message)
    lint_error: str | None = None
    calls: dict[str, Any] = field(default_factory=dict)  # ledger figures over LOOKBACK_S
    models: list[str] = field(default_factory=list)  # models the ledger saw (as requested)
    unpriced: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)


@dataclass
class Readiness:
    evidence: Evidence
    items: list[Item]

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        ev = self.evidence
        return {
            "project": str(ev.root),
            "pyproject": str(ev.pyproject) if ev.pyproject else None,
            "ledger": str(ev.ledger),
            "ledger_calls": ev.calls.get("calls", 0),
            "lint_findings": len(ev.findings),
            "passed": sum(i.status == "pass" for i in self.items),
            "failed": len(self.failed),
            "items": [i.to_dict() for i in self.items],
        }


# ---- gathering evidence -------------------------------------------------------------------------


def gather(path: Path, home: Path | None = None, settings: Any = None, now: float | None = None) -> Evidence:
    from llmguard.config import find_pyproject, pyproject_table
    from llmguard.reporting.alerts import project_settings

    path = Path(path).resolve()
    root = path if path.is_dir() else path.parent
    pyproject = find_pyproject(root)
    settings = settings if settings is not None else project_settings(root)
    explicit = pyproject_table(pyproject)
    if home is None:
        home = settings.home_path
        if not home.is_absolute():
            home = (pyproject.parent if pyproject else root) / home
    ledger = Path(home) / "ledger.sqlite3"
    evidence = Evidence(root=root, settings=settings, pyproject=pyproject, explicit=explicit, ledger=ledger)
    _lint(evidence, path)
    if ledger.exists() and report.has_calls_table(ledger):
        _ledger_figures(evidence, (now or time.time()) - LOOKBACK_S)
    return evidence


def _lint(evidence: Evidence, path: Path) -> None:
    """Lint findings through the library API (the CLI in a subprocess if the API is missing)."""
    try:
        from llmguard.lint import lint_paths, load_config
        from llmguard.lint.discover import discover
    except ImportError:
        _lint_cli(evidence, path)
        return
    try:
        config = load_config(path)
        result = lint_paths([str(path)], config)
        files = discover([str(path)], config).files
    except Exception as exc:  # a broken lint config must not hide the other checks
        evidence.lint_error = f"{type(exc).__name__}: {exc}"
        return
    evidence.findings = [f for f in result.findings]
    for source in files:
        try:
            text = Path(source.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _INSTALL.search(text):
            evidence.installs.append(source.display)


def _lint_cli(evidence: Evidence, path: Path) -> None:
    import json
    from types import SimpleNamespace

    done = subprocess.run(
        [sys.executable, "-m", "llmguard.lint", "lint", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        evidence.lint_error = done.stderr.strip() or f"llmguard lint exited with {done.returncode}"
        return
    data = json.loads(done.stdout or "[]")
    items = data.get("findings", data) if isinstance(data, dict) else data
    evidence.findings = [SimpleNamespace(**f) for f in items]
    for file in [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.ipynb")]:
        if _INSTALL.search(file.read_text(encoding="utf-8", errors="replace")):
            evidence.installs.append(str(file))


def _ledger_figures(evidence: Evidence, since: float) -> None:
    path = evidence.ledger
    model = "COALESCE(NULLIF(requested_model, ''), model)"
    row = report.query(
        path,
        """
        SELECT COUNT(*), SUM(input_tokens + output_tokens > 0), SUM(tokens_approximate),
               SUM(feature IS NOT NULL OR tenant IS NOT NULL), SUM(tenant IS NOT NULL), SUM("user" IS NOT NULL),
               SUM(total_ms IS NOT NULL), SUM(queue_ms IS NOT NULL), MAX(queue_ms), SUM(stream),
               SUM(priority = 'interactive' AND stream = 0 AND status = 'ok' AND cache_hit = 0
                   AND endpoint IN ('chat.completions', 'messages', 'responses', 'completions')),
               SUM(priority = 'interactive' AND stream = 0 AND status = 'ok' AND cache_hit = 0
                   AND endpoint IN ('chat.completions', 'messages', 'responses', 'completions') AND total_ms > ?),
               SUM(error_type = 'rate_limited'), SUM(status = 'error'), SUM(cache_hit), SUM(COALESCE(saved_usd, 0)),
               SUM(dedup_hit), SUM(steps IS NOT NULL), SUM(retry_count > 0), SUM(fallback_used)
        FROM calls WHERE ts >= ?""",
        (SLOW_UNSTREAMED_MS, since),
    )[0]
    names = (
        "calls",
        "with_tokens",
        "approximate",
        "tagged",
        "with_tenant",
        "with_user",
        "with_total",
        "with_queue",
        "max_queue_ms",
        "streamed",
        "unstreamed",
        "slow_unstreamed",
        "rate_limited",
        "errors",
        "cache_hits",
        "saved_usd",
        "dedup_hits",
        "with_steps",
        "retried",
        "fallbacks",
    )
    evidence.calls = {n: (v or 0) for n, v in zip(names, row, strict=True)}
    used = report.query(
        path,
        f"SELECT {model}, SUM(cost_usd IS NULL AND status = 'ok' AND cache_hit = 0), COUNT(*) "
        "FROM calls WHERE ts >= ? AND cache_hit = 0 GROUP BY 1 ORDER BY 3 DESC",
        (since,),
    )
    evidence.models = [m for m, _, _ in used if m]
    evidence.unpriced = {m: n for m, n, _ in used if n}
    rows = report.breakdown(path, [], report.Filters(since=since), latencies=("total",), steps=False)
    evidence.latency = rows[0] if rows else {}


# ---- the checklist ------------------------------------------------------------------------------


def evaluate(ev: Evidence) -> list[Item]:
    s = ev.settings
    guarded = bool(ev.installs) or ev.calls.get("calls", 0) > 0
    recorded = guarded and bool(getattr(s, "ledger", True))
    no_guard = (
        "llmguard is not installed in this code (no `llmguard.install()` or `%load_ext llmguard`, "
        "no recorded calls), so nothing measures this"
    )
    items = [_guard_item(ev, guarded)]
    items += [
        _limit_item(ev, 1, "rpm", "Requests per minute limits are handled."),
        _limit_item(ev, 2, "tpm", "Tokens per minute limits are handled."),
    ]
    items.append(_quota_item(ev))
    items.append(
        _recorded_item(
            ev,
            4,
            "Token usage is tracked per request.",
            recorded,
            no_guard,
            "every call's input, cached, output and reasoning tokens are in the ledger"
            + _of_calls(ev, "with_tokens", "with tokens")
            + (f", {ev.calls['approximate']:,} estimated locally" if ev.calls.get("approximate") else ""),
        )
    )
    items.append(_cost_item(ev, recorded, no_guard))
    items.append(_length_item(ev))
    items.append(_cache_item(ev, guarded, no_guard))
    items.append(_dedup_item(ev, guarded, no_guard))
    items.append(_retry_item(ev))
    items.append(
        _recorded_item(
            ev,
            10,
            "Queue depth and job age are monitored.",
            recorded,
            no_guard,
            "each call's queue wait is recorded; alerts fire when the queue grows or a job waits "
            "too long"
            + (f" (longest wait in 30 days: {_ms(ev.calls['max_queue_ms'])})" if ev.calls.get("calls") else ""),
        )
    )
    items.append(_timeout_item(ev, guarded))
    items.append(_stream_item(ev, guarded))
    items.append(_fallback_item(ev))
    items.append(
        _recorded_item(
            ev,
            14,
            "Rate-limit errors and provider errors are monitored.",
            recorded,
            no_guard,
            "429s, refusals and provider errors are recorded per call and alerted on"
            + (
                f" (30 days: {ev.calls['rate_limited']:,} final 429s, {ev.calls['errors']:,} errors)"
                if ev.calls.get("calls")
                else ""
            ),
        )
    )
    items.append(_latency_item(ev, recorded, no_guard))
    return items


def check(
    path: Path | str = ".", home: Path | str | None = None, settings: Any = None, now: float | None = None
) -> Readiness:
    """Evaluate the checklist for the project at `path` (its ledger under `home`, or the settings' home)."""
    evidence = gather(Path(path), Path(home) if home else None, settings, now)
    return Readiness(evidence, evaluate(evidence))


# ---- items --------------------------------------------------------------------------------------


def _guard_item(ev: Evidence, guarded: bool) -> Item:
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
    return Item(0, title, "pass", where + _of_calls(ev, "calls", "recorded in 30 days"))


def _models_hint(ev: Evidence) -> str:
    return ev.models[0] if ev.models else "gpt-4o-mini"


def _limit_item(ev: Evidence, number: int, unit: str, title: str) -> Item:
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


def _quota_item(ev: Evidence) -> Item:
    title = "Per-user or tenant quotas are defined."
    quotas = [k for k in (getattr(ev.settings, "quotas", None) or {}) if k.split(":", 1)[0] in ("tenant", "user")]
    fix = (
        'add [tool.llmguard.quotas] "tenant:NAME" = {usd_per_day = 5.0} (or "user:NAME") and tag calls with '
        "llmguard.tag(tenant=..., user=...)"
    )
    if not quotas:
        return Item(3, title, "fail", "no tenant or user quota in the settings", fix)
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
    return Item(3, title, "pass", f"quotas: {', '.join(quotas[:4])}")


def _recorded_item(ev: Evidence, number: int, title: str, recorded: bool, no_guard: str, how: str) -> Item:
    if not getattr(ev.settings, "ledger", True):
        return Item(
            number, title, "fail", "ledger=false: no call is recorded", "remove `ledger = false` from [tool.llmguard]"
        )
    if not recorded:
        return Item(number, title, "fail", no_guard, "install the guard (see the first line)")
    return Item(number, title, "pass", how)


def _cost_item(ev: Evidence, recorded: bool, no_guard: str) -> Item:
    title = "Cost is tracked by feature, model, or tenant."
    item = _recorded_item(ev, 5, title, recorded, no_guard, "")
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


def _length_item(ev: Evidence) -> Item:
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


def _cache_item(ev: Evidence, guarded: bool, no_guard: str) -> Item:
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


def _dedup_item(ev: Evidence, guarded: bool, no_guard: str) -> Item:
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


def _retry_item(ev: Evidence) -> Item:
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


def _timeout_item(ev: Evidence, guarded: bool) -> Item:
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


def _stream_item(ev: Evidence, guarded: bool) -> Item:
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


def _fallback_item(ev: Evidence) -> Item:
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


def _latency_item(ev: Evidence, recorded: bool, no_guard: str) -> Item:
    title = "p95 and p99 latency are tracked."
    item = _recorded_item(ev, 15, title, recorded, no_guard, "")
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
            f"p95 {_ms(lat['p95_ms'])}, p99 {_ms(lat['p99_ms'])} over "
            f"{lat['calls']:,} calls in 30 days (`llmguard report` breaks them down by step)",
        )
    return Item(
        15,
        title,
        "pass",
        "every call's latency (queue, retries, model, first token, total, steps) is "
        "recorded; `llmguard report` shows p50/p95/p99",
    )


def _of_calls(ev: Evidence, key: str, label: str) -> str:
    calls = ev.calls.get("calls", 0)
    if not calls:
        return ""
    return f" ({ev.calls.get(key, 0):,} of {calls:,} calls {label})" if key != "calls" else f" ({calls:,} {label})"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
