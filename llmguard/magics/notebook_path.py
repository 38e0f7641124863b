"""Which notebook this kernel runs, for the `notebook` column of the ledger.

Sources, first found wins (all are cheap dictionary or file reads, re-read before each cell so a
renamed notebook is followed where the front end tells the kernel):

1. `__vsc_ipynb_file__` in the user namespace: VS Code sets it to the notebook's path.
2. `__session__` in the user namespace: ipykernel (6.10+) copies `JPY_SESSION_NAME` there.
3. `JPY_SESSION_NAME` in the environment: Jupyter Server (JupyterLab, Notebook 7) starts each
   kernel with the notebook's path in it.
4. `jupyter_session` in the kernel's connection file (ipykernel's connection info), which
   jupyter_client writes from the same variable.

None when nothing says (a terminal IPython, a kernel started by hand).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any


def notebook_path(user_ns: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str | None:
    """The path of the notebook this kernel runs, or None."""
    environ = os.environ if environ is None else environ
    for candidate in (user_ns.get("__vsc_ipynb_file__"), user_ns.get("__session__"), environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate
    return _from_connection_file()


def _from_connection_file() -> str | None:
    if "ipykernel" not in sys.modules:  # a terminal IPython: no kernel, nothing to import
        return None
    try:
        from ipykernel.connect import get_connection_info

        info = get_connection_info(unpack=True)
    except Exception:
        return None
    value = info.get("jupyter_session") if isinstance(info, dict) else None
    return value if isinstance(value, str) and value.strip() else None
