"""Worker processes for a lint run that survive a worker dying.

`concurrent.futures.ProcessPoolExecutor` turns one dead worker (a native crash in libcst, the
OOM killer) into `BrokenProcessPool` for every task still pending, and cannot say which task
killed it. Here each worker holds one batch at a time, so a death is pinned on that batch: its
files go back one per batch, and the single file a worker then dies on gets `died(task, why)`
as its result. Nothing that killed a worker is ever run in the calling process.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Batch = list[tuple[int, Any]]  # (task index, task)
_GIVE_UP = 8  # worker deaths before any answer at all: the workers cannot run here


@dataclass(frozen=True)
class Workers:
    """How many worker processes, how many tasks each is sent at a time, and how each one starts."""

    count: int
    batch_size: int
    init: Callable[..., None] | None = None
    initargs: tuple[Any, ...] = ()


def run_tasks(
    tasks: Sequence[T], work: Callable[[T], R], died: Callable[[T, str], R], workers: Workers
) -> dict[int, R]:
    """{task index: result} for the tasks the workers finished or died on.

    Tasks missing from the answer were never started (no process could be created here); the
    caller may run those itself.
    """
    return _Run(tasks, work, died, workers).run()


class _Run(Generic[T, R]):
    """One run of the pool: the batches still queued, the workers busy with one, the deaths so far."""

    def __init__(
        self, tasks: Sequence[T], work: Callable[[T], R], died: Callable[[T, str], R], workers: Workers
    ) -> None:
        self.tasks, self.work, self.died, self.workers = tasks, work, died, workers
        self.context = _context()
        size = workers.batch_size
        self.queue: deque[Batch] = deque(
            [(i, tasks[i]) for i in range(start, min(start + size, len(tasks)))] for start in range(0, len(tasks), size)
        )
        self.results: dict[int, R] = {}
        self.busy: dict[Connection, tuple[Any, Batch]] = {}  # connection -> (process, batch it holds)
        self.deaths, self.answered, self.why = 0, False, ""

    def run(self) -> dict[int, R]:
        try:
            while self.queue or self.busy:
                if self.deaths >= _GIVE_UP and not self.answered:  # every worker dies: stop forking
                    self._give_up()
                    if not self.busy:
                        break
                if not self._fill():
                    return self.results  # no processes at all: the rest was never started
                busy = self.busy
                ready = wait(list(busy) + [process.sentinel for process, _ in busy.values()])
                for connection in [c for c in list(busy) if c in ready or busy[c][0].sentinel in ready]:
                    self._collect(connection)
        finally:
            for process, _ in self.busy.values():
                process.kill()
            for connection, (process, _) in self.busy.items():
                process.join(5)
                connection.close()
        return self.results

    def _give_up(self) -> None:
        for batch in self.queue:
            for index, task in batch:
                self.results[index] = self.died(task, f"worker processes keep dying; the last: {self.why}")
        self.queue.clear()

    def _fill(self) -> bool:
        """Start workers for queued batches, up to the count; False when not one process could start."""
        while self.queue and len(self.busy) < self.workers.count:
            worker = _start(self.context, self.work, self.workers.init, self.workers.initargs)
            if worker is None:
                return bool(self.busy)
            process, connection = worker
            self._send(process, connection, self.queue.popleft())
        return True

    def _send(self, process: Any, connection: Connection, batch: Batch) -> None:
        connection.send(batch)
        self.busy[connection] = (process, batch)

    def _collect(self, connection: Connection) -> None:
        """A worker answered (give it the next batch, or stop it) or died (pin the death on its batch)."""
        process, batch = self.busy[connection]
        answer = _receive(connection)
        if answer is not None:
            self.answered = True
            for index, ok, value in answer:
                self.results[index] = value if ok else self.died(self.tasks[index], value)
            if self.queue:
                self._send(process, connection, self.queue.popleft())
            else:
                _stop(process, connection)
                del self.busy[connection]
            return
        process.join(5)
        del self.busy[connection]
        connection.close()
        self.why = _death(process.exitcode)
        self.deaths += 1
        if len(batch) > 1:  # which of them was it? run each on its own to find out
            self.queue.extendleft([item] for item in reversed(batch))
        else:
            index, task = batch[0]
            self.results[index] = self.died(task, self.why)


def _context() -> Any:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin" else "spawn"
    return multiprocessing.get_context(method)


def _start(
    context: Any, work: Callable[..., Any], init: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> tuple[Any, Connection] | None:
    try:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, work, init, initargs), daemon=True)
        process.start()
    except (OSError, RuntimeError, ValueError):  # no process support here (sandbox, frozen app, limits)
        return None
    child.close()
    return process, parent


def _receive(connection: Connection) -> list[tuple[int, bool, Any]] | None:
    try:
        if connection.poll():
            return connection.recv()
    except (EOFError, OSError):
        pass
    return None


def _stop(process: Any, connection: Connection) -> None:
    try:
        connection.send(None)
    except OSError:
        pass
    connection.close()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"its worker process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"its worker process was killed by signal {-code}"
    return f"its worker process exited with code {code}"


def _serve(
    connection: Connection, work: Callable[[Any], Any], init: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker: run each batch it is sent, answer [(index, ok, result or error text)], stop on None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if init is not None:
        init(*initargs)
    while True:
        try:
            batch = connection.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        answer = []
        for index, task in batch:
            try:
                answer.append((index, True, work(task)))
            except Exception as exc:  # noqa: BLE001 - reported by the caller, the worker goes on
                answer.append((index, False, f"{type(exc).__name__}: {exc}"))
        connection.send(answer)
