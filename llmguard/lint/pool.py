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
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Batch = list[tuple[int, Any]]  # (task index, task)
_GIVE_UP = 8  # worker deaths before any answer at all: the workers cannot run here


def run_tasks(
    tasks: Sequence[T],
    work: Callable[[T], R],
    died: Callable[[T, str], R],
    *,
    workers: int,
    batch_size: int,
    init: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> dict[int, R]:
    """{task index: result} for the tasks the workers finished or died on.

    Tasks missing from the answer were never started (no process could be created here); the
    caller may run those itself.
    """
    context = _context()
    queue: deque[Batch] = deque()
    for start in range(0, len(tasks), batch_size):
        queue.append([(i, tasks[i]) for i in range(start, min(start + batch_size, len(tasks)))])
    results: dict[int, R] = {}
    busy: dict[Connection, tuple[Any, Batch]] = {}  # connection -> (process, batch it holds)
    deaths, answered, why = 0, False, ""
    try:
        while queue or busy:
            if deaths >= _GIVE_UP and not answered:  # every worker dies, whatever it is given: stop forking
                for batch in queue:
                    for index, task in batch:
                        results[index] = died(task, f"worker processes keep dying; the last: {why}")
                queue.clear()
                if not busy:
                    break
            while queue and len(busy) < workers:
                worker = _start(context, work, init, initargs)
                if worker is None:
                    if not busy:
                        return results  # no processes at all: the rest was never started
                    break
                process, connection = worker
                batch = queue.popleft()
                connection.send(batch)
                busy[connection] = (process, batch)
            ready = wait(list(busy) + [process.sentinel for process, _ in busy.values()])
            for connection in [c for c in list(busy) if c in ready or busy[c][0].sentinel in ready]:
                process, batch = busy[connection]
                answer = _receive(connection)
                if answer is not None:
                    answered = True
                    for index, ok, value in answer:
                        results[index] = value if ok else died(tasks[index], value)
                    if queue:
                        batch = queue.popleft()
                        connection.send(batch)
                        busy[connection] = (process, batch)
                        continue
                    _stop(process, connection)
                    del busy[connection]
                    continue
                process.join(5)
                del busy[connection]
                connection.close()
                why = _death(process.exitcode)
                deaths += 1
                if len(batch) > 1:  # which of them was it? run each on its own to find out
                    queue.extendleft([item] for item in reversed(batch))
                else:
                    index, task = batch[0]
                    results[index] = died(task, why)
    finally:
        for process, _ in busy.values():
            process.kill()
        for connection, (process, _) in busy.items():
            process.join(5)
            connection.close()
    return results


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
