"""llmguard: keep LLM API calls fast, bounded and cheap.

`llmguard.install()` routes every call of the official openai and anthropic SDKs through the
guard; `%load_ext llmguard` does the same in a notebook.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Unpack

    from llmguard import errors
    from llmguard.config import ConfigError, Settings, SettingsKwargs
    from llmguard.context import session_tags, set_session_tags, step, tag
    from llmguard.pipeline.guard import Guard
    from llmguard.reporting import report

# The runtime is imported on first use, so `import llmguard.sim` and `import llmguard.lint` load
# none of the guard (the simulator must stay independent of it; the linter must start fast).
# An attribute of None: the value is the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "errors": ("llmguard.errors", None),
    # `from llmguard import report` (as in notebooks/cost_report.ipynb) from before reporting/ existed
    "report": ("llmguard.reporting.report", None),
    "ConfigError": ("llmguard.config", "ConfigError"),
    "Settings": ("llmguard.config", "Settings"),
    "session_tags": ("llmguard.context", "session_tags"),
    "set_session_tags": ("llmguard.context", "set_session_tags"),
    "step": ("llmguard.context", "step"),
    "tag": ("llmguard.context", "tag"),
    "Guard": ("llmguard.pipeline.guard", "Guard"),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'llmguard' has no attribute {name!r}")
    import importlib

    module_name, attribute = where
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "Guard",
    "Settings",
    "errors",
    "report",
    "install",
    "uninstall",
    "current",
    "tag",
    "step",
    "set_session_tags",
    "session_tags",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_lock = threading.Lock()
_guard: Guard | None = None  # noqa: F821 - Guard is imported lazily


def install(**settings: Unpack[SettingsKwargs]) -> Guard:
    """Route every openai/anthropic SDK call in this process through a guard.

    Keyword arguments are settings (see `llmguard.config.Settings`; typed by `SettingsKwargs`, so
    mypy and editors know their names); they override `[tool.llmguard]` in pyproject.toml and
    `LLMGUARD_*` environment variables. Calling it again replaces the running guard.
    """
    global _guard
    from llmguard import context
    from llmguard.config import load_settings
    from llmguard.intercept import transport
    from llmguard.pipeline.guard import Guard

    guard = Guard(load_settings(settings))
    with _lock:
        previous, _guard = _guard, guard
        transport.attach(guard)
        context.set_step_listener(guard.ledger.record_step if guard.ledger is not None else None)
    if previous is not None:
        previous.close()
    return guard


def uninstall() -> None:
    """Restore the SDKs' HTTP stack exactly as it was; later calls are not recorded."""
    global _guard
    from llmguard import context
    from llmguard.intercept import transport

    with _lock:
        previous, _guard = _guard, None
        transport.detach()
        context.set_step_listener(None)
    if previous is not None:
        previous.close()


def current() -> Guard | None:
    """The installed guard, or None."""
    return _guard


def load_ipython_extension(ipython: Any) -> None:
    from llmguard.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from llmguard.magics import unload

    unload(ipython)
