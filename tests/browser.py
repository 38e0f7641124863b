"""What the browser tests share: Debian's Chromium, its flags, and a requirement check.

Playwright's own browser download is not used. A missing piece skips the test, except in CI
(CI=true), where it is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LLMGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser(purpose: str, modules: tuple[str, ...] = ("playwright.sync_api",)) -> None:
    """Skip (or, in CI, fail) `purpose` unless `modules` import and Chromium is installed."""
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the {module.split('.')[0]} package (pip install {module.split('.')[0]})")
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        message = f"{purpose} needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
