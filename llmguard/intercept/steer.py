"""Clients that would leave httpx behind are kept on it while a guard is attached.

google-genai sends its async calls through aiohttp whenever aiohttp is importable (it is, beside
LiteLLM, LangChain community and most notebook stacks), and aiohttp is a seam the guard does not
wrap: those calls would go unmetered and unlimited. The SDK itself prefers httpx2 when given a
transport (`BaseApiClient._use_aiohttp`), so while attached that choice answers False and its
async calls go through httpx2 like its sync ones; detaching restores the SDK's own method.
Clients built before `install()` follow too: the SDK asks on every request's session.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from llmguard.intercept import on_import

GENAI_CLIENT_MODULE = "google.genai._api_client"
_saved: dict[str, Any] = {}  # module name -> the original method


def _never_aiohttp(self: Any) -> bool:
    return False


def _steer_genai(module: ModuleType) -> None:
    base = getattr(module, "BaseApiClient", None)
    if base is None or not hasattr(base, "_use_aiohttp") or GENAI_CLIENT_MODULE in _saved:
        return  # another SDK release: nothing to steer
    _saved[GENAI_CLIENT_MODULE] = base.__dict__.get("_use_aiohttp")
    base._use_aiohttp = _never_aiohttp


def attach() -> None:
    on_import.when_imported(GENAI_CLIENT_MODULE, _steer_genai)


def detach() -> None:
    on_import.forget(GENAI_CLIENT_MODULE)
    original = _saved.pop(GENAI_CLIENT_MODULE, None)
    module = sys.modules.get(GENAI_CLIENT_MODULE)
    if original is not None and module is not None:
        module.BaseApiClient._use_aiohttp = original
