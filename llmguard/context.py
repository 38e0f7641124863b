"""Who and what a call is for, carried in contextvars so threads and asyncio tasks each see their own.

`tag()` attributes calls to a tenant, user, feature, prompt version, priority or risk; `step()`
measures a named workflow step and gives the calls inside it a deadline. Session-wide tags (set by
`%llmguard tag` and the notebook hooks) sit under the context tags.

Every finished step is handed to one listener as a `StepEvent` (`set_step_listener`; `install()`
points it at the ledger), so a step is measured once per run, not once per call made inside it.
This module imports nothing of the ledger: it only produces the events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

KNOWN_TAGS = ("tenant", "user", "feature", "prompt_version", "priority", "risk", "notebook", "cell", "cache")
PRIORITIES = ("interactive", "background")

_EMPTY: MappingProxyType[str, Any] = MappingProxyType({})
_tags: ContextVar[MappingProxyType[str, Any]] = ContextVar("llmguard_tags", default=_EMPTY)
_deadline: ContextVar[float | None] = ContextVar("llmguard_deadline", default=None)
_workflow: ContextVar[Workflow | None] = ContextVar("llmguard_workflow", default=None)
# The steps open around the running code, outermost first. A context var (not a process-wide
# list) so a call sees only the steps it runs inside, in its own thread or task.
_open_steps: ContextVar[tuple[StepFrame, ...]] = ContextVar("llmguard_open_steps", default=())
# Set by `set_session_tags`, read through `session_tags()` / `has_tags()` (pipeline/call.py still
# reads this dict directly; it stays for that until it calls `has_tags()`).
_session_tags: dict[str, Any] = {}
# The tags a step event carries (the dimensions of the ledger's `steps` table).
STEP_TAGS = ("tenant", "user", "feature", "prompt_version", "notebook", "cell")


@dataclass(slots=True, eq=False)
class StepFrame:
    """One open step: what calls inside it capture (see `open_steps`)."""

    name: str
    started: float  # perf_counter at entry
    wall: float = 0.0  # time.time() at entry: the step event's ts
    calls: int = 0  # calls started inside it so far (counted by `open_steps`)


@dataclass(slots=True)
class StepEvent:
    """One finished run of a `step()`: a row of the ledger's `steps` table."""

    name: str
    duration_ms: float
    ts: float = field(default_factory=time.time)  # when the step started (as a call's ts is when it started)
    over_budget: bool = False  # ran past its timeout
    calls: int = 0  # model calls started inside it (in its own thread/task and the tasks it spawned)
    tenant: Any = None
    user: Any = None
    feature: Any = None
    prompt_version: Any = None
    notebook: Any = None
    cell: Any = None
    run_id: str = ""  # the ledger's run, filled in when recorded
    step_id: str = ""  # unique; filled in when recorded (ingesting a journal twice skips it)


StepListener = Callable[[StepEvent], Any]
_step_listener: StepListener | None = None


def set_step_listener(listener: StepListener | None) -> None:
    """Who receives every finished step (None: nobody). `install()` sets the ledger, `uninstall()` None.

    Called on the exiting thread or task, so it must be quick; whatever it raises is swallowed, so a
    broken listener never breaks the user's step.
    """
    global _step_listener
    _step_listener = listener


@dataclass
class Workflow:
    """Step timings of the workflow the current calls belong to (milliseconds by step name)."""

    steps: dict[str, float] = field(default_factory=dict)
    over_budget: list[str] = field(default_factory=list)


def set_session_tags(**tags: Any) -> None:
    """Tags for every call in this process (None removes one)."""
    _validate(tags)
    for key, value in tags.items():
        if value is None:
            _session_tags.pop(key, None)
        else:
            _session_tags[key] = value


def session_tags() -> dict[str, Any]:
    """A copy of the session-wide tags (`set_session_tags`)."""
    return dict(_session_tags)


def has_tags() -> bool:
    """Whether any session or context tag is set: the guard's cheap test before `current_tags()`."""
    return bool(_session_tags) or bool(_tags.get())


def current_tags() -> dict[str, Any]:
    """Session tags overlaid by the tags of the current context."""
    local = _tags.get()
    if not _session_tags:
        return dict(local)
    merged = dict(_session_tags)
    merged.update(local)
    return merged


def current_deadline() -> float | None:
    """The monotonic time by which the current call must finish, if any."""
    return _deadline.get()


_budget_scopes: ContextVar[tuple[Any, ...]] = ContextVar("llmguard_budget_scopes", default=())


def current_budget_scopes() -> list[Any]:
    """Extra budget scopes of the current context (e.g. a budget for one notebook cell)."""
    return list(_budget_scopes.get())


def push_budget_scope(scope: Any) -> Any:
    return _budget_scopes.set(_budget_scopes.get() + (scope,))


def pop_budget_scope(token: Any) -> None:
    _budget_scopes.reset(token)


def current_steps() -> dict[str, float]:
    """Finished step timings of the current workflow (milliseconds by step name)."""
    workflow = _workflow.get()
    return dict(workflow.steps) if workflow else {}


def open_steps() -> tuple[StepFrame, ...]:
    """The steps the current code runs inside, outermost first.

    The guard calls this once as each call starts, which is what counts the call in each of these
    steps' `calls` (an attribute bump per open step: a single bytecode store under the GIL).
    """
    frames = _open_steps.get()
    for frame in frames:
        frame.calls += 1
    return frames


def step_durations(frames: tuple[StepFrame, ...], now: float | None = None) -> dict[str, float]:
    """Each enclosing step's own duration so far, in ms; a name nested in itself keeps the outer one."""
    now = time.perf_counter() if now is None else now
    durations: dict[str, float] = {}
    for frame in frames:
        durations.setdefault(frame.name, (now - frame.started) * 1000)
    return durations


def _validate(tags: dict[str, Any]) -> None:
    priority = tags.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"llmguard: priority must be one of {PRIORITIES}, got {priority!r}")
    deadline = tags.get("deadline")
    if deadline is not None and (not isinstance(deadline, int | float) or deadline <= 0):
        raise ValueError(f"llmguard: deadline is seconds from now and must be > 0, got {deadline!r}")


class tag:  # noqa: N801 - used like a function: `with llmguard.tag(feature="summary"):`
    """Attribute every call inside to these tags (sync and async, nestable).

    `deadline=` (seconds from now) bounds every call inside; any other keyword becomes a custom tag
    recorded with the call (and, for names listed in the cache's `key_tags`, part of the cache key).
    """

    def __init__(self, **tags: Any) -> None:
        _validate(tags)
        self._deadline_s = tags.pop("deadline", None)
        self._tags = tags
        self._tokens: list[Any] = []

    def __enter__(self) -> tag:
        outer = _tags.get()
        merged = dict(outer)
        merged.update(self._tags)
        # The outermost tag scope is one workflow: steps measured inside it belong to the calls inside it.
        workflow = _workflow.get() if outer else Workflow()
        self._tokens.append((_tags.set(MappingProxyType(merged)), self._set_deadline(), _workflow.set(workflow)))
        return self

    def _set_deadline(self) -> Any:
        if self._deadline_s is None:
            return None
        new = time.monotonic() + self._deadline_s
        outer = _deadline.get()
        return _deadline.set(new if outer is None else min(outer, new))

    def __exit__(self, *exc: Any) -> None:
        tags_token, deadline_token, workflow_token = self._tokens.pop()
        _workflow.reset(workflow_token)
        _tags.reset(tags_token)
        if deadline_token is not None:
            _deadline.reset(deadline_token)

    async def __aenter__(self) -> tag:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)


class StepTimeout(TimeoutError):
    """A `step()` ran past its timeout budget."""


def _tell(listener: StepListener, frame: StepFrame, elapsed_ms: float, over: bool) -> None:
    """Hand one finished step to the listener; nothing it raises reaches the user's code."""
    try:
        tags = current_tags()
        listener(
            StepEvent(
                name=frame.name,
                duration_ms=elapsed_ms,
                ts=frame.wall,
                over_budget=over,
                calls=frame.calls,
                tenant=tags.get("tenant"),
                user=tags.get("user"),
                feature=tags.get("feature"),
                prompt_version=tags.get("prompt_version"),
                notebook=tags.get("notebook"),
                cell=tags.get("cell"),
            )
        )
    except Exception:
        pass


class step:  # noqa: N801
    """Measure a named workflow step and bound it by `timeout` seconds.

    Async: the step is cancelled at its deadline and raises `StepTimeout`. Sync code cannot be
    interrupted safely, so there the step is measured and reported as over budget, and model calls
    inside it get an HTTP timeout no longer than the time left.
    """

    def __init__(self, name: str, timeout: float | None = None) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"llmguard: step {name!r} timeout must be > 0 seconds, got {timeout!r}")
        self.name = name
        self.timeout = timeout
        self.elapsed_ms: float | None = None
        self._state: list[Any] = []

    def _enter(self) -> None:
        workflow = _workflow.get()
        if workflow is None:  # outside any tag(): steps belong to the current context from now on
            workflow = Workflow()
            _workflow.set(workflow)
        deadline_token = None
        if self.timeout is not None:
            new = time.monotonic() + self.timeout
            outer = _deadline.get()
            deadline_token = _deadline.set(new if outer is None else min(outer, new))
        start = time.perf_counter()
        frame = StepFrame(self.name, start, time.time())
        frames_token = _open_steps.set(_open_steps.get() + (frame,))
        self._state.append((frame, workflow, deadline_token, frames_token))

    def _exit(self, timed_out: bool = False) -> bool:
        frame, workflow, deadline_token, frames_token = self._state.pop()
        start = frame.started
        self.elapsed_ms = (time.perf_counter() - start) * 1000
        try:
            _open_steps.reset(frames_token)
        except ValueError:  # exited in another context than it was entered in (a moved generator)
            _open_steps.set(tuple(f for f in _open_steps.get() if f is not frame))
        workflow.steps[self.name] = workflow.steps.get(self.name, 0.0) + self.elapsed_ms
        over = timed_out or (self.timeout is not None and self.elapsed_ms > self.timeout * 1000)
        if over:
            workflow.over_budget.append(self.name)
        if deadline_token is not None:
            _deadline.reset(deadline_token)
        listener = _step_listener
        if listener is not None:
            _tell(listener, frame, self.elapsed_ms, over)
        return over

    def __enter__(self) -> step:
        self._enter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._exit()

    async def __aenter__(self) -> step:
        self._enter()
        if self.timeout is not None:
            self._timeout_cm = asyncio.timeout(self.timeout) if hasattr(asyncio, "timeout") else None
            if self._timeout_cm is not None:
                await self._timeout_cm.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        suppressed_timeout = False
        cm = getattr(self, "_timeout_cm", None)
        if cm is not None:
            try:
                await cm.__aexit__(exc_type, exc, tb)
            except TimeoutError:
                suppressed_timeout = True
        self._exit(timed_out=suppressed_timeout)
        if suppressed_timeout:
            raise StepTimeout(f"llmguard: step {self.name!r} exceeded its {self.timeout}s timeout budget")
        return False
