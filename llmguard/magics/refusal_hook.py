"""IPython's handler for the SDKs' errors: llmguard's refusals as a short box, any other error untouched.

IPython lets an extension handle chosen exception classes in place of its traceback
(`set_custom_exc`). The classes are the clients' status and timeout errors (openai's and anthropic's
`APIStatusError` and `APITimeoutError`, the deadline refusal's type; google-genai's `APIError`,
mistralai's `SDKError`, httpx's `HTTPStatusError`), added once the client is
imported: before each cell the hook picks up SDKs imported since, and imports one the cell names
(it would import it itself), so a refusal in the cell that first imports the SDK is caught too.

For each exception the handler decides: llmguard's refusal or retry note (`errors.refusal_of`) ->
the box (`refusal_box.py`), with the traceback kept where `%tb` and `%debug` find it; anything else
-> the shell's own `showtraceback`, as without llmguard. `%pdb on` keeps IPython's traceback (the
debugger starts from it). A handler another extension set earlier keeps its own exceptions, and
`uninstall` puts it back.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from llmguard.errors import refusal_of
from llmguard.magics.output import show
from llmguard.magics.refusal_box import RefusalBox

# module -> its error classes that can carry a refusal (LiteLLM's errors subclass openai's)
ERROR_CLASSES = {
    "openai": ("APIStatusError", "APITimeoutError"),
    "anthropic": ("APIStatusError", "APITimeoutError"),
    "google.genai.errors": ("APIError",),
    "mistralai.client.errors": ("SDKError",),
    "httpx": ("HTTPStatusError",),
}
SDKS = tuple(ERROR_CLASSES)


class RefusalHook:
    """The extension's custom exception handler in one shell."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.shown = 0  # refusals boxed in the cell running now
        self._classes: tuple[type[BaseException], ...] = ()
        self._missing: set[str] = set()  # SDKs not installed: not looked for again
        self._previous: tuple[tuple[type[BaseException], ...], Any] | None = None
        self._ours: Any = None

    def install(self) -> None:
        self._previous = (tuple(getattr(self.ip, "custom_exceptions", ())), getattr(self.ip, "CustomTB", None))
        self._register()
        self.watch("")

    def uninstall(self) -> None:
        if self._previous is not None and self.ip.CustomTB is self._ours:
            self.ip.custom_exceptions, self.ip.CustomTB = self._previous
        self._previous = self._ours = None

    def pre_run_cell(self, raw_cell: str) -> None:
        self.shown = 0
        self.watch(raw_cell)

    def watch(self, raw_cell: str) -> None:
        """Handle the errors of every SDK imported by now, or named by the cell about to run."""
        found = list(self._classes)
        for name in SDKS:
            module = sys.modules.get(name)
            if module is None and name.split(".")[0] in raw_cell and name not in self._missing:
                module = self._import(name)
            for attribute in ERROR_CLASSES[name] if module is not None else ():
                cls = getattr(module, attribute, None)
                if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
                    found.append(cls)
        if len(found) != len(self._classes):
            self._classes = tuple(found)
            self._register()

    def _import(self, name: str) -> Any:
        try:
            if importlib.util.find_spec(name) is None:
                self._missing.add(name)
                return None
            return importlib.import_module(name)
        except Exception:  # a broken install: the cell's own import will say so
            self._missing.add(name)
            return None

    def _register(self) -> None:
        if self._previous is None:
            return
        self.ip.set_custom_exc(self._classes + self._previous[0], self._handle)
        self._ours = self.ip.CustomTB

    def _handle(self, shell: Any, etype: Any, value: Any, tb: Any, tb_offset: int | None = None) -> list[str]:
        """IPython calls this for the registered classes; it returns what the cell showed (IPython's format)."""
        refusal = refusal_of(value) if isinstance(value, self._classes) and not shell.call_pdb else None
        if refusal is None:
            previous_classes, previous_handler = self._previous or ((), None)
            if previous_handler is not None and previous_classes and isinstance(value, previous_classes):
                return list(previous_handler(etype, value, tb, tb_offset) or [])
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
            return []
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb and %debug
        if sys.version_info >= (3, 12):
            sys.last_exc = value
        try:
            stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
            package = _public_package(etype.__module__ or "")
            name = f"{package}.{etype.__name__}" if package else etype.__name__
            box = RefusalBox(refusal, name, self._where(tb), "\n".join(stb))
            show(box.text(), box.html())
        except Exception:  # never lose the error to a bug here: IPython's own traceback instead
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
            return []
        self.shown += 1
        if hasattr(shell, "_last_traceback"):  # ipykernel's execute_reply carries it (nbclient's error text)
            shell._last_traceback = box.lines()
        return box.lines()

    def _where(self, tb: Any) -> str | None:
        """The innermost cell line in the traceback, as IPython labels it (`Cell In[3], line 3`)."""
        name_of = getattr(self.ip.compile, "format_code_name", None)
        where = None
        while tb is not None and name_of is not None:
            label = name_of(tb.tb_frame.f_code.co_filename)
            if label is not None:
                where = f"{label[0]} {label[1]}, line {tb.tb_lineno}"
            tb = tb.tb_next
        return where


def _public_package(module: str) -> str:
    """`openai._exceptions` -> `openai`, `google.genai.errors` -> `google.genai`: where a user imports it from."""
    parts = []
    for part in module.split(".")[:2]:
        if part.startswith("_"):
            break
        parts.append(part)
    return ".".join(parts)
