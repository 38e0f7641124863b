"""`import llmguard` and `%load_ext llmguard` on top of `import openai`, each in a fresh interpreter.

Arms, interleaved (one run of each per repeat, the order rotating), after one untimed run of each so
bytecode caches exist:
  - "import openai": the baseline;
  - "import llmguard after openai": `import llmguard` timed on its own in an interpreter that has
    imported openai (a difference of two ~1 s arms would drown it: `import openai` alone spreads
    over hundreds of ms here);
  - "%load_ext llmguard": in an IPython shell with openai imported, the magic itself timed.
Child interpreters run with PYTHONDONTWRITEBYTECODE removed from their environment (`env -u`):
this environment sets it, and without .pyc files every import would compile from source, which is
not what a user's machine does. Each child also reports what it loaded, checked here: the extension
installed a guard, and plain `import llmguard` did not load the runtime.
Target: `%load_ext llmguard` on top of `import openai` in IPython <= +100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402

ARMS = {
    "import openai": (
        "import time, sys; t=time.perf_counter(); import openai; s=time.perf_counter()-t\n"
        "print(json.dumps({'s': s, 'guard': False, 'runtime': 'llmguard.pipeline.guard' in sys.modules}))"
    ),
    "import llmguard after openai": (
        "import time, sys, openai; t=time.perf_counter(); import llmguard; s=time.perf_counter()-t\n"
        "print(json.dumps({'s': s, 'guard': llmguard.current() is not None,"
        " 'runtime': 'llmguard.pipeline.guard' in sys.modules}))"
    ),
    "%load_ext llmguard": (
        "import time, sys, openai\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "ip = get_ipython(); t = time.perf_counter(); ip.run_line_magic('load_ext', 'llmguard')\n"
        "s = time.perf_counter() - t; import llmguard\n"
        "print(json.dumps({'s': s, 'guard': llmguard.current() is not None,"
        " 'runtime': 'llmguard.pipeline.guard' in sys.modules}))"
    ),
}


def child_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # env -u PYTHONDONTWRITEBYTECODE
    env["LLMGUARD_HOME"] = home
    return env


def run(code: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(quick: bool = False, repeats: int | None = None) -> Outcome:
    repeats = repeats or (3 if quick else 9)
    out = Outcome("import_time")
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        out.note("PYTHONDONTWRITEBYTECODE is set here; child interpreters run without it (env -u), so .pyc are used")
    scratch = tempfile.TemporaryDirectory(prefix="llmguard-bench-import-")  # removed when measured
    env = child_env(scratch.name)
    for code in ARMS.values():  # writes the bytecode caches; not timed
        run(code, env)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for turn in range(repeats):
        for arm in rotated(list(ARMS), turn):
            result = run(ARMS[arm], env)
            times[arm].append(result["s"] * 1000)
            if arm == "%load_ext llmguard":
                out.check(result["guard"], "%load_ext llmguard did not install a guard")
            if arm == "import llmguard after openai":
                out.check(not result["guard"] and not result["runtime"], "import llmguard loaded the runtime")
    scratch.cleanup()
    added = times["import llmguard after openai"]
    print(f"{repeats} repeats, fresh interpreter each, order rotating (ms):")
    for arm, values in times.items():
        print(f"  {arm:26s} median {median(values):7.1f} ms  {spread(values)}")
    out.add(
        Figure("%load_ext llmguard after import openai (IPython)", median(times["%load_ext llmguard"]), 100.0, "ms")
    )
    out.add(Figure("import llmguard added to import openai", median(added), 100.0, "ms"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats (default 9; 3 with --quick)")
    return cli(measure, parser, "import_time")


if __name__ == "__main__":
    sys.exit(main())
