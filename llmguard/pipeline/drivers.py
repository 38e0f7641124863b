"""The two drivers of the pipeline generator: one for sync clients, one for async (asyncio, trio)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from llmguard.intercept.http import async_sleep, drain_async, drain_sync, read_async, read_sync
from llmguard.pipeline.steps import ReadBody, Send, Sleep, Wait, WaitFlight

Pipeline = Generator[Any, Any, Any]


def drive_sync(pipeline: Pipeline, send: Callable[[Any], Any]) -> Any:
    """Run the pipeline for a sync client; returns what the pipeline returns."""
    try:
        action = next(pipeline)
        while True:
            if type(action) is Send:
                try:
                    result = send(action.request)
                except Exception as exc:  # handed to the pipeline, which decides
                    action = pipeline.throw(exc)
                    continue
                action = pipeline.send(result)
            elif type(action) is Wait:
                action.ticket.wait_sync(action.timeout)
                action = pipeline.send(None)
            elif type(action) is WaitFlight:
                action = pipeline.send(action.claim.wait(action.timeout))
            elif type(action) is Sleep:
                time.sleep(action.seconds)
                action = pipeline.send(None)
            elif type(action) is ReadBody:
                action = pipeline.send(read_sync(action.response))
            else:
                drain_sync(action.response)
                action = pipeline.send(None)
    except StopIteration as done:
        return done.value
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: the pipeline lets go, then it goes on
        abandon(pipeline, exc)
        raise


async def drive_async(pipeline: Pipeline, send: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run the pipeline for an async client."""
    try:
        action = next(pipeline)
        while True:
            if type(action) is Send:
                try:
                    result = await send(action.request)
                except Exception as exc:
                    action = pipeline.throw(exc)
                    continue
                action = pipeline.send(result)
            elif type(action) is Wait:
                await action.ticket.wait_async(action.timeout)
                action = pipeline.send(None)
            elif type(action) is WaitFlight:
                action = pipeline.send(await action.claim.await_async(action.timeout))
            elif type(action) is Sleep:
                await async_sleep(action.seconds)
                action = pipeline.send(None)
            elif type(action) is ReadBody:
                action = pipeline.send(await read_async(action.response))
            else:
                await drain_async(action.response)
                action = pipeline.send(None)
    except StopIteration as done:
        return done.value
    except BaseException as exc:  # CancelledError above all: the pipeline lets go, then it goes on
        abandon(pipeline, exc)
        raise


def abandon(pipeline: Generator[Any, Any, Any], exc: BaseException) -> None:
    """Hand an exception that ended a driver to the pipeline, so it releases and records the call."""
    try:
        pipeline.throw(exc)
    except BaseException:  # it re-raises what it was given (or has already finished)
        pass
