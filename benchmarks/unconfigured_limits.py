"""429s that reach the provider, and calls that fail, when the user configured no limits (or wrong ones).

2,000 calls from 32 threads against the simulated provider (its own process) with 300 RPM and
40k TPM on a 1-second window, with llmguard's default settings (retry budget 0.2, 3 attempts):
  - "unconfigured": no `limits`; the guard learns them (and the window) from the headers;
  - "2x too high": `limits` twice the provider's, with the right window.
Each arm is run `--repeats` times, interleaved. Printed per arm: the provider's 429s as a share of
requests (target <= 1%), failed calls (target 0), and checks that the arm did what it claims (every
call answered or failed, one ledger row per call, requests the provider received).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

import llmguard
from llmguard.ledger.sqlite import read_events

sys.path.insert(0, str(Path(__file__).parent))
from _simproc import sim_process  # noqa: E402

MODEL = "gpt-4o-mini"
RPM, TPM = 300, 40_000


def _stats(base: str) -> dict:
    with urllib.request.urlopen(base + "/_sim/stats", timeout=10) as r:
        return json.loads(r.read())


def _reset(base: str) -> None:
    for path, body in (("/_sim/reset", b"{}"), ("/_sim/configure", json.dumps({"rpm": RPM, "tpm": TPM}).encode())):
        urllib.request.urlopen(urllib.request.Request(base + path, data=body, method="POST"), timeout=10).read()


def run_arm(base: str, calls: int, limits: dict | None) -> dict:
    _reset(base)
    home = tempfile.mkdtemp(prefix="llmguard-bench-")
    settings = {"home": home, "max_wait_s": 120}
    if limits:
        settings["limits"] = {MODEL: limits}
    guard = llmguard.install(**settings)
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    failed = 0

    def one(i: int) -> None:
        nonlocal failed
        try:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Question {i}: name a colour."}], max_tokens=16
            )
        except openai.APIError:
            failed += 1

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(calls)))
    ledger = guard.ledger.path
    llmguard.uninstall()
    rows = read_events(ledger)
    stats = _stats(base)
    assert len(rows) == calls, f"{len(rows)} ledger rows for {calls} calls"
    assert stats["requests"] >= calls, stats["requests"]
    return {"requests": stats["requests"], "rate_limited": stats["rate_limited"], "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    arms = {"unconfigured": None, "2x too high": {"rpm": 2 * RPM, "tpm": 2 * TPM}}
    results: dict[str, list[dict]] = {name: [] for name in arms}
    with sim_process("--window-s", "1", "--rpm", str(RPM), "--tpm", str(TPM)) as base:
        for _ in range(args.repeats):
            for name, limits in arms.items():  # interleaved
                results[name].append(run_arm(base, args.calls, limits))
    print(f"{args.calls} calls x {args.repeats} repeats, 32 threads, provider {RPM} RPM / {TPM} TPM per 1 s")
    for name, runs in results.items():
        shares = [r["rate_limited"] / r["requests"] for r in runs]
        failed = [r["failed"] for r in runs]
        met = max(shares) <= 0.01 and max(failed) == 0
        print(
            f"  {name:13s} 429s {statistics.median(shares):.2%} median (max {max(shares):.2%}), "
            f"failed calls {failed}, requests {[r['requests'] for r in runs]}  "
            f"{'met' if met else 'MISSED'} (target <= 1% 429s, 0 failed)"
        )


if __name__ == "__main__":
    main()
