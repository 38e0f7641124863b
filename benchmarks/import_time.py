"""`import llmguard` and `%load_ext llmguard` on top of `import openai` (target: at most +100 ms)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile

RUNS = 7


def timed(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    home = tempfile.mkdtemp()
    base = "import time; t=time.perf_counter(); import openai; print(time.perf_counter()-t)"
    with_guard = "import time; t=time.perf_counter(); import openai, llmguard; print(time.perf_counter()-t)"
    load_ext = (
        f"import time, os; os.environ['LLMGUARD_HOME']={home!r}; import openai\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "ip=get_ipython(); t1=time.perf_counter(); ip.run_line_magic('load_ext', 'llmguard'); t2=time.perf_counter()\n"
        "print(t2-t1)"
    )
    b = statistics.median(timed(base) for _ in range(RUNS))
    g = statistics.median(timed(with_guard) for _ in range(RUNS))
    e = statistics.median(timed(load_ext) for _ in range(RUNS))
    print(f"import openai             : {b * 1000:7.1f} ms")
    print(f"import openai, llmguard   : {g * 1000:7.1f} ms   (+{(g - b) * 1000:.1f} ms, target <= 100 ms)")
    print(f"%load_ext llmguard itself : {e * 1000:7.1f} ms   (after openai and IPython are imported)")


if __name__ == "__main__":
    main()
