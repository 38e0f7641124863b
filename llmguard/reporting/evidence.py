"""What `llmguard check` knows about a project: its settings, the linter's findings on its code, and
its ledger's figures over the last 30 days (LOOKBACK_S)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmguard.reporting.db import has_calls_table, query
from llmguard.reporting.filters import Filters
from llmguard.reporting.queries import breakdown

LOOKBACK_S = 30 * 86400
SLOW_UNSTREAMED_MS = 2000.0  # interactive answers slower than this should stream
_INSTALL = re.compile(r"llmguard\s*\.\s*install\s*\(|load_ext\s+llmguard|from\s+llmguard\s+import\s+[^\n]*\binstall\b")


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
    # where shared budgets keep their books: kind, label (never a password), reachable, reason
    store: dict[str, Any] = field(default_factory=dict)


def gather(path: Path, home: Path | None = None, settings: Any = None, now: float | None = None) -> Evidence:
    """The evidence for the project at `path` (a folder or a file); its ledger under `home` or the settings' home."""
    from llmguard.config import find_pyproject, pyproject_table
    from llmguard.reporting.alerts.thresholds import project_settings

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
    evidence.store = store_evidence(settings, Path(home))
    if ledger.exists() and has_calls_table(ledger):
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
    """What the ledger recorded since `since`: counts of what the checklist looks for, models, latency."""
    path = evidence.ledger
    model = "COALESCE(NULLIF(requested_model, ''), model)"
    row = query(
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
    used = query(
        path,
        f"SELECT {model}, SUM(cost_usd IS NULL AND status = 'ok' AND cache_hit = 0), COUNT(*) "
        "FROM calls WHERE ts >= ? AND cache_hit = 0 GROUP BY 1 ORDER BY 3 DESC",
        (since,),
    )
    evidence.models = [m for m, _, _ in used if m]
    evidence.unpriced = {m: n for m, n, _ in used if n}
    rows = breakdown(path, [], Filters(since=since), latencies=("total",), steps=False)
    evidence.latency = rows[0] if rows else {}


def store_evidence(settings: Any, home: Path) -> dict[str, Any]:
    """Which store shared budgets use and whether it answers (a Redis is pinged; nothing is created)."""
    import os

    from llmguard.store import StoreUnavailable, describe

    setting = str(getattr(settings, "store", "local"))
    found: dict[str, Any] = {"kind": setting if setting in ("process", "local") else "redis"}
    found["label"] = describe(setting, home)
    found["namespace"] = getattr(settings, "namespace", "default")
    found["reachable"], found["reason"] = True, ""
    if setting == "local":
        folder = home
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            found["reachable"], found["reason"] = False, f"{folder} is not writable"
    elif setting != "process":
        from llmguard.config import ConfigError
        from llmguard.store.redis_store import RedisStore

        try:
            store = RedisStore(setting, found["namespace"])
            try:
                store.ping()
            finally:
                store.close()
        except (ConfigError, StoreUnavailable) as exc:
            found["reachable"], found["reason"] = False, str(exc).removeprefix("llmguard: ")
    return found
