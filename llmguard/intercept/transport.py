"""Interception: every SDK request passes through the guard, with no change to user code.

Every httpx2 (and legacy httpx, wrapped when first imported: `on_import.py`) client picks its transport in `_transport_for_url`, proxies and
mounts included, so wrapping what that method returns covers clients created before and after
`install()`. Requests that are not LLM API calls (`providers.adapter_for`) pass through untouched.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any

from llmguard.intercept import collecting, on_import, steer
from llmguard.intercept.meter import ResponseMeter
from llmguard.providers import adapter_for

if TYPE_CHECKING:  # the guard is handed in by attach(): the seam never imports the pipeline
    from llmguard.pipeline.guard import Guard

_DROP_WHEN_REWRITTEN = ("content-encoding", "content-length", "transfer-encoding")
_state_lock = threading.Lock()
_active: Guard | None = None
_patched: dict[str, tuple[Any, Any, Any]] = {}  # module name -> (module, sync original, async original)
_classes: dict[str, tuple[type, type, type, type]] = {}


def active_guard() -> Guard | None:
    return _active


def _make_classes(lib: Any) -> tuple[type, type, type, type]:
    """Transport and stream wrappers built on this library's own base classes (its asserts check them).

    Long (~120 lines) on purpose: the four classes must subclass `lib`'s own bases, known only when
    a library is patched, so they are defined here, together, once per library.
    """

    class MeteredStream(lib.SyncByteStream):
        def __init__(self, inner: Any, meter: ResponseMeter) -> None:
            self._inner = inner
            self._meter = meter
            self._completed = False

        def __iter__(self) -> Any:
            meter = self._meter
            for chunk in self._inner:
                out = meter.feed(chunk)
                if out:
                    yield out
            tail = meter.flush()
            if tail:
                yield tail
            self._completed = True

        def close(self) -> None:
            try:
                closer = getattr(self._inner, "close", None)
                if closer is not None:
                    closer()
            finally:  # closed by the garbage collector (a cycle): handed over, settled elsewhere
                self._meter.finish(self._completed, from_finalizer=collecting.in_collection())

        def __del__(self) -> None:  # a stream the user dropped without closing is still recorded
            try:
                self._meter.finish(self._completed, from_finalizer=True)  # handed over, settled elsewhere
            except Exception:
                pass

    class AsyncMeteredStream(lib.AsyncByteStream):
        def __init__(self, inner: Any, meter: ResponseMeter) -> None:
            self._inner = inner
            self._meter = meter
            self._completed = False

        async def __aiter__(self) -> Any:
            meter = self._meter
            async for chunk in self._inner:
                out = meter.feed(chunk)
                if out:
                    yield out
            tail = meter.flush()
            if tail:
                yield tail
            self._completed = True

        async def aclose(self) -> None:
            try:
                closer = getattr(self._inner, "aclose", None)
                if closer is not None:
                    await closer()
            finally:  # closed by the garbage collector (a cycle): handed over, settled elsewhere
                self._meter.finish(self._completed, from_finalizer=collecting.in_collection())

        def __del__(self) -> None:
            try:
                self._meter.finish(self._completed, from_finalizer=True)  # handed over, settled elsewhere
            except Exception:
                pass

    def _finalise(response: Any, meter: ResponseMeter | None, stream_cls: type) -> Any:
        if meter is None:
            return response
        if hasattr(response, "_content"):  # an already-read response (mock/ASGI transports)
            response._content = meter.feed(response._content) + meter.flush()
            meter.finish(True)
            return response
        if meter.rewrites:
            for name in _DROP_WHEN_REWRITTEN:
                if name in response.headers:
                    del response.headers[name]
            if meter._decoder is not None:
                pass  # the meter emits decoded bytes; content-encoding was just dropped
        response.stream = stream_cls(response.stream, meter)
        return response

    class GuardedTransport(lib.BaseTransport):
        def __init__(self, inner: Any, guard: Guard) -> None:
            self.inner = inner
            self.guard = guard

        def handle_request(self, request: Any) -> Any:
            guard = self.guard
            adapter = adapter_for(request) if guard.enabled else None
            if adapter is None:
                return self.inner.handle_request(request)
            response, meter = guard.handle(request, self.inner.handle_request, lib, adapter)
            return _finalise(response, meter, MeteredStream)

        def close(self) -> None:
            self.inner.close()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    class AsyncGuardedTransport(lib.AsyncBaseTransport):
        def __init__(self, inner: Any, guard: Guard) -> None:
            self.inner = inner
            self.guard = guard

        async def handle_async_request(self, request: Any) -> Any:
            guard = self.guard
            adapter = adapter_for(request) if guard.enabled else None
            if adapter is None:
                return await self.inner.handle_async_request(request)
            response, meter = await guard.ahandle(request, self.inner.handle_async_request, lib, adapter)
            return _finalise(response, meter, AsyncMeteredStream)

        async def aclose(self) -> None:
            await self.inner.aclose()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    return GuardedTransport, AsyncGuardedTransport, MeteredStream, AsyncMeteredStream


def _wrapping(original: Any, wrapper_cls: type, attr: str) -> Any:
    def _transport_for_url(self: Any, url: Any) -> Any:
        transport = original(self, url)
        guard = _active
        if guard is None:
            return transport
        wrapper = getattr(transport, attr, None)
        if wrapper is None or wrapper.guard is not guard:
            wrapper = wrapper_cls(transport, guard)
            try:
                setattr(transport, attr, wrapper)
            except AttributeError:  # a transport with __slots__: wrap per call instead
                pass
        return wrapper

    _transport_for_url.__llmguard__ = True  # type: ignore[attr-defined]
    _transport_for_url.__wrapped__ = original  # type: ignore[attr-defined]
    return _transport_for_url


def _patch(module_name: str) -> bool:
    try:
        lib = importlib.import_module(module_name)
    except ImportError:
        return False
    _patch_module(lib)
    return True


def _patch_module(lib: Any) -> None:
    module_name = lib.__name__
    if module_name in _patched:
        return
    if module_name not in _classes:
        _classes[module_name] = _make_classes(lib)
    sync_cls, async_cls, _, _ = _classes[module_name]
    sync_original = lib.Client._transport_for_url
    async_original = lib.AsyncClient._transport_for_url
    lib.Client._transport_for_url = _wrapping(sync_original, sync_cls, "_llmguard_sync")
    lib.AsyncClient._transport_for_url = _wrapping(async_original, async_cls, "_llmguard_async")
    _patched[module_name] = (lib, sync_original, async_original)


def _patch_when_imported(lib: Any) -> None:
    with _state_lock:
        if _active is not None:
            _patch_module(lib)


def attach(guard: Guard) -> list[str]:
    """Route SDK traffic through `guard`. Returns the HTTP libraries that were wrapped."""
    global _active
    with _state_lock:
        wrapped = ["httpx2"] if _patch("httpx2") else []
        _active = guard
        collecting.watch()
    # legacy httpx (LiteLLM, older SDKs, plain httpx code): wrapped now if loaded, else when first imported
    if "httpx" in sys.modules:
        with _state_lock:
            _patch_module(sys.modules["httpx"])
        wrapped.append("httpx")
    else:
        on_import.when_imported("httpx", _patch_when_imported)
    steer.attach()  # google-genai's async calls kept on httpx2 when aiohttp is installed
    return wrapped


def detach() -> None:
    """Restore the HTTP libraries exactly as they were."""
    global _active
    on_import.forget("httpx")
    steer.detach()
    with _state_lock:
        _active = None
        collecting.unwatch()
        for lib, sync_original, async_original in _patched.values():
            lib.Client._transport_for_url = sync_original
            lib.AsyncClient._transport_for_url = async_original
        _patched.clear()


def is_attached() -> bool:
    return _active is not None
