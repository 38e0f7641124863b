"""`%load_ext llmguard`: everything the extension adds to a shell, and how `%unload_ext` takes it away.

Loading installs the guard (settings from pyproject.toml `[tool.llmguard]` and `LLMGUARD_*`
variables; a guard already installed by `llmguard.install()` is kept), registers the magics, the
`pre_run_cell`/`post_run_cell` hooks (cell tags, lint on run, the terminal summary), the AST
transformer of lint `block` mode and the handler that shows llmguard's refusals as a short box
(`refusal_hook.py`), and shows the live widget once. Unloading removes each of them, stops the
widget's thread and uninstalls the guard, so `%reload_ext llmguard` starts clean.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class

import llmguard
from llmguard.magics.after_cell import AfterCell
from llmguard.magics.cell_tags import CellTagger
from llmguard.magics.lint_on_run import LintOnRun
from llmguard.magics.output import note
from llmguard.magics.parsing import HelpShown
from llmguard.magics.refusal_hook import RefusalHook

_extension: Extension | None = None


def has_widget_frontend(ip: Any) -> bool:
    """A kernel (JupyterLab, Notebook, VS Code) can show widgets; a terminal IPython cannot."""
    return getattr(ip, "kernel", None) is not None


class Extension:
    """The extension's state in one shell."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.guard: Any = None
        self.tagger = CellTagger(ip)
        self.lint = LintOnRun(ip)
        self.refusals = RefusalHook(ip)
        self.after_cell = AfterCell()
        self.widget: Any = None  # SpendWidget, created when first shown
        self._clients: dict[tuple[Any, ...], Any] = {}
        self.magics: LLMGuardMagics | None = None
        self._tags_before: dict[str, Any] = {}  # the session tags set before loading, restored by unload

    # ---- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        self._tags_before = llmguard.session_tags()
        existing = llmguard.current()
        try:
            self.guard = existing if existing is not None else llmguard.install()
        except llmguard.ConfigError as exc:  # a bad [tool.llmguard] or LLMGUARD_* value: say which, no traceback
            raise UsageError(f"{exc}\nFix it, then run %load_ext llmguard again.") from None
        self.tagger.start()
        events = self.ip.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        self.ip.ast_transformers.append(self.lint.blocker)
        self.refusals.install()
        self.magics = LLMGuardMagics(self.ip, self)
        self.ip.register_magics(self.magics)
        self._announce(reused=existing is not None)
        self.show_widget()

    def unload(self) -> None:
        events = self.ip.events
        for name, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                events.unregister(name, callback)
            except ValueError:
                pass
        if self.lint.blocker in self.ip.ast_transformers:
            self.ip.ast_transformers.remove(self.lint.blocker)
        self.refusals.uninstall()
        _unregister_magics(self.ip)
        if self.widget is not None:
            self.widget.close()
            self.widget = None
        for client in self._clients.values():
            try:
                client.close()
            except Exception:
                pass
        self._clients.clear()
        self.tagger.stop()
        # `%llmguard tag`, `cache off` and `fresh` are this session's: reload starts without them
        added = {name: None for name in llmguard.session_tags() if name not in self._tags_before}
        llmguard.set_session_tags(**added, **self._tags_before)
        llmguard.uninstall()
        self.guard = None

    def _announce(self, reused: bool) -> None:
        guard = self.guard
        ledger = guard.ledger
        where = ledger.path if ledger is not None and ledger.available else "nowhere (ledger unavailable)"
        how = "using the guard installed earlier" if reused else "openai and anthropic calls are guarded"
        note(f"llmguard is on ({how}); ledger: {where}. Help: %llmguard? · %%llm? · %%llmguard?", "ok")

    # ---- hooks -------------------------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        self.tagger.pre_run_cell(info)
        raw = getattr(info, "raw_cell", None) or ""
        self.after_cell.pre_run_cell(llmguard.current(), raw)
        self.refusals.pre_run_cell(raw)
        self.lint.pre_run_cell(info)

    def post_run_cell(self, result: Any) -> None:
        self.tagger.post_run_cell(result)
        self.lint.post_run_cell(result)
        if not has_widget_frontend(self.ip):  # a terminal has no widget: one line after each cell that called a model
            self.after_cell.post_run_cell(llmguard.current(), self.refusals.shown)

    # ---- pieces the magics use ---------------------------------------------------------------
    @cached_property
    def llm_defaults(self) -> Any:
        """`%%llm`'s session defaults (an `LLMDefaults`), read from LLMGUARD_LLM_* when first used."""
        from llmguard.magics.cell_llm import LLMDefaults

        return LLMDefaults.from_env()

    def show_widget(self) -> None:
        guard = llmguard.current()
        if guard is None:
            return
        if not has_widget_frontend(self.ip):
            from llmguard.magics.widget import terminal_summary

            terminal_summary(guard)
            return
        if self.widget is None:
            from llmguard.magics.widget import SpendWidget

            self.widget = SpendWidget(llmguard.current)
        self.widget.display()

    def llm_client(self, provider: str, base_url: str | None) -> Any:
        """One SDK client per provider, base URL and key, reused across `%%llm` cells."""
        import os

        from llmguard.magics import cell_llm

        key = (
            provider,
            base_url,
            os.environ.get("LLMGUARD_LLM_BASE_URL"),
            os.environ.get(cell_llm._BASE_ENV[provider]),
            os.environ.get(cell_llm._KEY_ENV[provider]),
        )
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = cell_llm.make_client(provider, base_url)
        return client


@magics_class
class LLMGuardMagics(Magics):
    """`%llmguard`, `%%llmguard` and `%%llm`."""

    def __init__(self, shell: Any, extension: Extension) -> None:
        super().__init__(shell)
        self.extension = extension

    @line_cell_magic
    def llmguard(self, line: str, cell: str | None = None) -> Any:
        """Control llmguard (line magic) or run a cell under scoped settings (cell magic)."""
        __tracebackhide__ = True
        try:
            if cell is None:
                from llmguard.magics import line as line_magic

                line_magic.run(self.extension, line)
                return None
            from llmguard.magics import cell_scope

            return cell_scope.run(self.extension, line, cell)
        except HelpShown as shown:
            print(shown.text)
            return None

    @cell_magic
    def llm(self, line: str, cell: str) -> None:
        """Send the cell as a prompt to a model and stream the answer into the output."""
        from llmguard.magics import cell_llm

        try:
            cell_llm.run(self.extension, line, cell)
        except HelpShown as shown:
            print(shown.text)


# The magics' modules (argparse parsers, the `%%llm` client code) load on first use, not at
# `%load_ext`: IPython's `?` asks an object for `getdoc()` before its `__doc__`, so the full help is
# built only when someone asks for it.
def _llmguard_help() -> str:
    from llmguard.magics import cell_scope
    from llmguard.magics import line as line_magic

    return (
        "Control llmguard (line magic) or run a cell under scoped settings (cell magic).\n\n"
        + line_magic.help_text()
        + "\n=== %%llmguard (cell magic)\n"
        + cell_scope.PARSER.format_help()
    )


def _llm_help() -> str:
    from llmguard.magics import cell_llm

    return cell_llm.PARSER.format_help()


def _attach_help(magic: Any, build: Callable[[], str]) -> None:
    magic.getdoc = build


_attach_help(LLMGuardMagics.llmguard, _llmguard_help)
_attach_help(LLMGuardMagics.llm, _llm_help)


def _unregister_magics(ip: Any) -> None:
    table = ip.magics_manager.magics
    for kind, name in (("line", "llmguard"), ("cell", "llmguard"), ("cell", "llm")):
        table[kind].pop(name, None)
    registry = ip.magics_manager.registry
    registry.pop("LLMGuardMagics", None)


def load(ip: Any) -> Extension:
    """Install the guard and hook it into this shell (idempotent: a second load replaces the first)."""
    global _extension
    if _extension is not None:
        _extension.unload()
        _extension = None
    extension = Extension(ip)
    extension.load()
    _extension = extension
    return extension


def unload(ip: Any) -> None:
    global _extension
    if _extension is not None:
        _extension.unload()
        _extension = None
    else:
        llmguard.uninstall()
    note("llmguard is off: SDK calls go straight to the provider again")


def current_extension() -> Extension | None:
    """The loaded extension (for tests and tools), or None."""
    return _extension
