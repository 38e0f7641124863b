"""IPython extension: `%load_ext llmguard`, the `%llmguard`, `%%llmguard` and `%%llm` magics, the live widget.

Nothing is imported here until IPython loads the extension, and ipywidgets, rich and the linter
(libcst) only when first used, so `import llmguard` stays light. See `extension.py` for what
loading adds and unloading removes.
"""

from __future__ import annotations

from typing import Any


def load(ipython: Any) -> None:
    from llmguard.magics.extension import load as load_extension

    load_extension(ipython)


def unload(ipython: Any) -> None:
    from llmguard.magics.extension import unload as unload_extension

    unload_extension(ipython)
