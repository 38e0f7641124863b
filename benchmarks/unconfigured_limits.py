"""429s that reach the provider, and calls that fail, when the user configured no limits (or wrong ones).

2,000 calls from 32 threads against the simulated provider (its own process) with 300 RPM and
40k TPM on a 1-second window, with llmguard's default settings (retry budget 0.2, 3 attempts):
  - "unconfigured": no `limits`; the guard learns them (and the window) from the headers;
  - "2x too high": `limits` twice the provider's, with the right window.
Each arm is run `--repeats` times, interleaved, the order rotating. Printed per arm: the provider's 429s as a share of
requests (target <= 1%), failed calls (target 0), and checks that the arm did what it claims (every
call answered or failed, one ledger row per call, requests the provider received). The simulator is warmed up first by one call to another model.
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
from _bench import Figure, Outcome, cli, rotated  # noqa: E402
from _simproc import sim_process  # noqa: E402

MODEL = "gpt-4o-mini"
RPM, TPM = 300, 40_000


def _stats(base: str) -> dict:
    with urllib.request.urlopen(base + "/_sim/stats", timeout=10) as r:
        return json.loads(r.read())


def _reset(base: str) -> None:
    for path, body in (("/_sim/reset", b"{}"), ("/_sim/configure", json.dumps({"rpm": RPM, "tpm": TPM}).encode())):
        urllib.request.urlopen(urllib.request.Request(base + path, data=body, method="POST"), timeout=10).read()


def run_arm(out: Outcome, name: str, base: str, calls: int, limits: dict | None) -> dict:
    _reset(base)
    scratch = tempfile.TemporaryDirectory(prefix="llmguard-bench-")
    settings = {"home": scratch.name, "max_wait_s": 120}
    if limits:
        settings["limits"] = {MODEL: limits}
        settings["window_s"] = 1.0  # the provider's window: only the numbers are wrong
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
    scratch.cleanup()
    stats = _stats(base)
    out.check(len(rows) == calls, f"{name}: {len(rows)} ledger rows for {calls} calls")
    out.check(stats["requests"] >= calls - failed, f"{name}: the provider received {stats['requests']} requests")
    return {"requests": stats["requests"], "rate_limited": stats["rate_limited"], "failed": failed}


def warm_up(base: str) -> None:
    """One call to another model (its own buckets): the simulator's first request loads its tokenizer."""
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    client.close()


def measure(quick: bool = False, calls: int | None = None, repeats: int | None = None) -> Outcome:
    calls = calls or (400 if quick else 2000)
    repeats = repeats or 3
    out = Outcome("unconfigured_limits")
    arms = {"unconfigured": None, "2x too high": {"rpm": 2 * RPM, "tpm": 2 * TPM}}
    results: dict[str, list[dict]] = {name: [] for name in arms}
    with sim_process("--window-s", "1", "--rpm", str(RPM), "--tpm", str(TPM)) as base:
        warm_up(base)
        for turn in range(repeats):
            for name in rotated(list(arms), turn):  # interleaved, the order rotating
                results[name].append(run_arm(out, name, base, calls, arms[name]))
    print(f"{calls} calls x {repeats} repeats, 32 threads, provider {RPM} RPM / {TPM} TPM per 1 s")
    for name, runs in results.items():
        shares = [r["rate_limited"] / r["requests"] for r in runs]
        failed = [r["failed"] for r in runs]
        print(
            f"  {name:13s} 429s {statistics.median(shares):.2%} median (max {max(shares):.2%}), "
            f"failed calls {failed}, requests {[r['requests'] for r in runs]}"
        )
        out.add(Figure(f"limits {name}: 429s share of requests (worst)", max(shares), 0.01, "%"))
        out.add(Figure(f"limits {name}: failed calls (worst repeat)", max(failed), 0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls per run (default 2000; 400 with --quick)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 3)")
    return cli(measure, parser, "unconfigured_limits")


if __name__ == "__main__":
    sys.exit(main())
