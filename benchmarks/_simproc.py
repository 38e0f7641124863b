"""Run the simulated provider in its own process, so it does not share the client's GIL."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def sim_process(*args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmguard.cli", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not match:
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sim_stats(base_url: str) -> dict:
    """The simulator's counters (`GET /_sim/stats`): requests received, 429s, first request time."""
    with urllib.request.urlopen(base_url + "/_sim/stats", timeout=10) as response:
        return json.loads(response.read())


def sim_reset(base_url: str, **configure: object) -> None:
    """Zero the simulator's counters; `configure` (e.g. rpm=, tpm=) also refills its buckets, as new limits start full."""
    posts = [("/_sim/reset", {})] + ([("/_sim/configure", configure)] if configure else [])
    for path, body in posts:
        request = urllib.request.Request(base_url + path, data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(request, timeout=10).read()
