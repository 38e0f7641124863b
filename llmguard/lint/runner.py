"""A whole run: discover → cache lookup → prefilter → parse and check (in parallel for large trees).

Reading, hashing and the literal prefilter happen in this process (they are cheap); only files
that need parsing go to worker processes (pool.py), and only when there are enough of them to
pay for the workers' start-up. A linter bug met on one file (an exception, a worker that dies)
becomes an LG000 for that file plus an error naming it (exit code 2); the run goes on, and such
results are never cached.
"""

from __future__ import annotations

import codecs
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmguard.lint.cache import ResultCache, code_stamp, digest, stat_key
from llmguard.lint.config import LintConfig
from llmguard.lint.discover import SourcePath, discover
from llmguard.lint.findings import PARSE_ERROR, PARSE_ERROR_NAME, Finding
from llmguard.lint.gitignore import PatternSet

if TYPE_CHECKING:
    from llmguard.lint.engine import Engine, FileResult

_PARALLEL_MIN_FILES = 24  # below this many files to parse, worker start-up costs more than it saves


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # missing paths, unreadable folders, linter bugs: exit code 2
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    cached: int = 0
    parsed: int = 0
    fixed: int = 0
    diffs: list[str] = field(default_factory=list)


def run(
    paths: list[str],
    config: LintConfig,
    *,
    use_cache: bool = True,
    jobs: int = 0,
    fix: bool = False,
    diff: bool = False,
    cwd: str | None = None,
    follow_symlinks: bool = False,
) -> RunResult:
    cwd = cwd or os.getcwd()
    with _collector_paused():  # tens of thousands of tuples, no cycles: collections would only re-scan them
        cache = ResultCache(_fingerprint(config)) if use_cache else None
        memo = cache.folders if cache is not None else None
        found = discover(paths, config, cwd, follow_symlinks=follow_symlinks, memo=memo)
    result = RunResult(files=len(found.files))
    result.errors.extend(f"llmguard lint: {p}: no such file or directory" for p in found.missing)
    result.errors.extend(
        f"llmguard lint: {folder}: cannot read folder: {why} (not checked)" for folder, why in found.unreadable
    )
    ignores = _PerFileIgnores(config)
    if fix or diff:
        _apply_fixes(_engine(config), found.files, ignores, result, write=fix)
        if diff:
            return result
    report_unreadable = PARSE_ERROR in config.enabled_codes()
    pending: list[_Pending] = []
    with _collector_paused():
        misses = _cache_misses(found.files, cache, result) if cache is not None else found.files
    for source in misses:
        todo = _cached_or_read(source, cache, result, ignores if report_unreadable else None)
        if todo is not None:
            pending.append(todo)
    results = _lint_all(_engine(config), config, pending, ignores, jobs) if pending else []
    for (source, _, key, content), file_result in zip(pending, results, strict=True):
        result.findings.extend(file_result.findings)
        result.parsed += file_result.parsed
        if file_result.internal_errors:
            result.errors.extend(f"llmguard lint: {source.display}: {e}" for e in file_result.internal_errors)
            continue  # a linter bug is not a property of the file: never cache it
        if cache is not None:
            cache.store(
                source.path, key, content, tuple(_portable(f) for f in file_result.findings), file_result.dependencies
            )
    if cache is not None:
        cache.save()
        if cache.warning:
            result.warnings.append(cache.warning)
    result.findings.sort(key=Finding.sort_key)
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a phase that only builds acyclic data."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_Pending = tuple[SourcePath, bytes, tuple[int, int], bytes]  # (file, its bytes, (mtime_ns, size), digest)


def _cache_misses(files: list[SourcePath], cache: ResultCache, result: RunResult) -> list[SourcePath]:
    """Add the findings of every file whose size and mtime match its cache entry (a warm run's
    whole loop, inlined: one stat and one dict lookup a file); returns the rest, for
    `_cached_or_read`."""
    entries, stat, findings = cache.entries, os.stat, result.findings
    misses = []
    for source in files:
        entry = entries.get(source.path)
        if entry is not None and not entry[4]:  # entries with dependencies: _cached_or_read checks them
            try:
                st = stat(source.path)
            except OSError:
                misses.append(source)
                continue
            if entry[0] == st.st_mtime_ns and entry[1] == st.st_size:
                if entry[3]:
                    findings.extend(_restore(entry[3], source.display))
                result.cached += 1
                continue
        misses.append(source)
    return misses


def _cached_or_read(
    source: SourcePath, cache: ResultCache | None, result: RunResult, ignores: _PerFileIgnores | None
) -> _Pending | None:
    """Add a file's cached findings to `result` (None), or read it for linting. An unreadable file
    is an LG000 when `ignores` is given (LG000 is enabled) and does not ignore it there.

    Without a cache there is nothing to key: the file is neither stat()ed nor hashed.
    """
    key = stat_key(source.path) if cache is not None else None
    entry = cache.lookup_stat(source.path, key) if cache is not None and key is not None else None
    if entry is None:
        try:
            with open(source.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            if ignores is not None and PARSE_ERROR not in ignores.codes(source.path):
                result.findings.append(_unreadable(source.display, exc))
            return None
        if cache is None:
            return source, data, (0, len(data)), b""
        content = digest(data)
        key = key or (0, len(data))
        entry = cache.lookup_digest(source.path, key, content)
        if entry is None:
            return source, data, key, content
    if entry[3]:
        result.findings.extend(_restore(entry[3], source.display))
    result.cached += 1
    return None


def _engine(config: LintConfig) -> Engine:
    """The engine (and libcst) load only when some file actually needs linting or fixing."""
    from llmguard.lint.engine import engine_for

    return engine_for(config)


def _fingerprint(config: LintConfig) -> str:
    return f"{config.fingerprint()}-{code_stamp()}-{sys.version_info[0]}{sys.version_info[1]}"


def _portable(finding: Finding) -> tuple[Any, ...]:
    """A finding without its path (the cache is keyed by path; the display path depends on cwd)."""
    return finding.as_tuple()[:3] + finding.as_tuple()[4:]


def _restore(items: tuple[tuple[Any, ...], ...], display: str) -> list[Finding]:
    return [Finding(*(item[:3] + (display,) + item[3:])) for item in items]


def _crashed(display: str, message: str) -> FileResult:
    """The result for a file the linter itself failed on: an LG000, and an error for exit code 2."""
    from llmguard.lint.engine import FileResult

    return FileResult(
        [Finding(PARSE_ERROR, PARSE_ERROR_NAME, f"{message} (not checked)", display, 1, 1, 1, 1)],
        internal_errors=[message],
    )


def _unreadable(display: str, exc: OSError) -> Finding:
    message = f"cannot read the file: {exc.strerror or exc} (not checked)"
    return Finding(PARSE_ERROR, PARSE_ERROR_NAME, message, display, 1, 1, 1, 1)


class _PerFileIgnores:
    def __init__(self, config: LintConfig) -> None:
        self.root = str(config.root)
        self.patterns = [(PatternSet([glob]), frozenset(codes)) for glob, codes in config.per_file_ignores]

    def codes(self, path: str) -> frozenset[str]:
        if not self.patterns or not path.startswith(self.root + os.sep):
            return frozenset()
        relative = path[len(self.root) + 1 :].replace(os.sep, "/")
        found: set[str] = set()
        for patterns, codes in self.patterns:
            if patterns.match(relative):
                found.update(codes)
        if not found:
            return frozenset()
        from llmguard.lint.rules import all_codes

        return frozenset(c for c in all_codes() if any(c.startswith(p) or p == "ALL" for p in found))


# -- linting the files that missed the cache -------------------------------------------------------
def _lint_all(
    engine: Engine,
    config: LintConfig,
    pending: list[_Pending],
    ignores: _PerFileIgnores,
    jobs: int,
) -> list[FileResult]:
    from llmguard.lint.engine import FileResult

    results: list[FileResult | None] = [None] * len(pending)
    to_parse: list[int] = []
    for i, (source, data, _, _) in enumerate(pending):
        try:
            quick = _quick(engine, source, data, ignores.codes(source.path))
        except Exception as exc:  # noqa: BLE001 - a linter bug costs this file, not the run
            quick = _crashed(source.display, _internal(exc))
        if quick is not None:
            results[i] = quick
        else:
            to_parse.append(i)
    workers = _worker_count(jobs, len(to_parse))
    tasks = [
        (pending[i][0].display, pending[i][1], pending[i][0].kind, ignores.codes(pending[i][0].path)) for i in to_parse
    ]
    done: dict[int, FileResult] = {}
    if workers > 1:
        order = sorted(range(len(tasks)), key=lambda t: -len(tasks[t][1]))  # largest first: workers finish together
        done = {order[k]: r for k, r in _parallel(config, [tasks[t] for t in order], workers).items()}
    for t, i in enumerate(to_parse):  # in this process: everything, or what no worker process was started for
        results[i] = done[t] if t in done else _lint_one(engine, tasks[t])
    return [r if r is not None else FileResult() for r in results]


def _lint_one(engine: Engine, task: tuple[str, bytes, str, frozenset[str]]) -> FileResult:
    display, data, kind, ignored = task
    try:
        return engine.lint_bytes(data, display, kind, ignored)
    except Exception as exc:  # noqa: BLE001 - a linter bug costs this file, not the run
        return _crashed(display, _internal(exc))


def _internal(exc: Exception) -> str:
    return f"internal error ({type(exc).__name__}: {exc}); please report it"


def _quick(engine: Engine, source: SourcePath, data: bytes, ignored: frozenset[str]) -> FileResult | None:
    """The result without parsing when it is already known (prefilter miss, binary, too large)."""
    from llmguard.lint.engine import FileResult

    if source.kind != "python":
        return None if source.kind == "notebook" or engine.codes & {"LG403"} else FileResult()
    if len(data) > engine.config.max_file_bytes or b"\0" in data:
        return engine.lint_bytes(data, source.display, source.kind, ignored)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rules = engine.candidates(text, source.display)
    return FileResult() if not any(rule.code not in ignored for rule in rules) else None


def _worker_count(jobs: int, files: int) -> int:
    if jobs == 1 or files < _PARALLEL_MIN_FILES:
        return 1
    available = os.cpu_count() or 1
    wanted = jobs if jobs > 0 else available
    return max(1, min(wanted, files // 8 or 1))


_worker_engine: Engine | None = None


def _init_worker(config: LintConfig) -> None:
    global _worker_engine
    _worker_engine = _engine(config)


def _work(task: tuple[str, bytes, str, frozenset[str]]) -> FileResult:
    assert _worker_engine is not None
    return _lint_one(_worker_engine, task)


def _died(task: tuple[str, bytes, str, frozenset[str]], why: str) -> FileResult:
    return _crashed(task[0], f"the linter crashed on this file ({why}); please report it")


def _parallel(
    config: LintConfig, tasks: list[tuple[str, bytes, str, frozenset[str]]], workers: int
) -> dict[int, FileResult]:
    """{task index: result}; a task missing from it never reached a worker (no processes here)."""
    from llmguard.lint.pool import Workers, run_tasks

    batch = max(1, min(16, len(tasks) // (workers * 16)))
    return run_tasks(tasks, _work, _died, Workers(workers, batch, init=_init_worker, initargs=(config,)))


# -- fixes -------------------------------------------------------------------------------------
def _apply_fixes(
    engine: Engine, files: list[SourcePath], ignores: _PerFileIgnores, result: RunResult, write: bool
) -> None:
    from llmguard.lint.fixer import fix_file

    for source in files:
        if source.kind == "template":
            continue
        try:
            with open(source.path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        try:
            if source.kind == "python" and _quick(engine, source, data, frozenset()) is not None:
                continue
            outcome = fix_file(engine, data, source.display, source.kind, ignores.codes(source.path))
        except Exception as exc:  # noqa: BLE001 - a linter bug costs this file's fixes, not the run
            result.errors.append(
                f"llmguard lint: {source.display}: internal error while fixing "
                f"({type(exc).__name__}: {exc}); please report it"
            )
            continue
        if outcome.new_text is None:
            if outcome.skipped:
                result.warnings.append(outcome.skipped)
            continue
        result.fixed += outcome.applied
        result.diffs.append(outcome.diff)
        if write:
            bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
            with open(source.path, "wb") as handle:
                handle.write(bom + outcome.new_text.encode("utf-8"))
