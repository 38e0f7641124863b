"""IPython extension: `%load_ext llmguard` installs the guard and says where the ledger is."""

from __future__ import annotations

from typing import Any


def load(ipython: Any) -> None:
    import llmguard

    guard = llmguard.install()
    ledger = guard.ledger
    where = ledger.path if ledger is not None and ledger.available else "nowhere (ledger unavailable)"
    _show(f"llmguard is on: openai and anthropic calls are metered; ledger: {where}")


def unload(ipython: Any) -> None:
    import llmguard

    llmguard.uninstall()
    _show("llmguard is off: SDK calls go straight to the provider again")


def _show(text: str) -> None:
    try:
        from IPython.display import display

        display({"text/plain": text}, raw=True)
    except Exception:
        print(text)
