"""`llmguard sim`: run the simulated provider in the foreground, to rehearse limits and failures offline.

The main CLI owns the sub-command; this module only adds the arguments and runs the server.
"""

from __future__ import annotations

import argparse
import signal
import threading

from llmguard.sim.faults import KINDS


def _fault(value: str) -> tuple[str, float]:
    kind, sep, p = value.partition("=")
    if not sep or kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=PROBABILITY with KIND one of {', '.join(KINDS)}, got {value!r}"
        )
    try:
        probability = float(p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"probability in {value!r} is not a number") from None
    if not 0.0 <= probability <= 1.0:
        raise argparse.ArgumentTypeError(f"probability in {value!r} must be between 0 and 1")
    return kind, probability


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 picks a free one; default 8765)")
    parser.add_argument("--rpm", type=int, default=None, help="requests per window, per model (default: unlimited)")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per window, per model (default: unlimited)")
    parser.add_argument("--window-s", type=float, default=60.0, help="rate-limit window in seconds (default 60)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="base latency / time to first token")
    parser.add_argument("--per-token-ms", type=float, default=0.0, help="extra latency per output token")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=P",
        help=f"inject a fault with probability P; repeatable. KIND: {', '.join(KINDS)}",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for fault draws and answers")


def run(args: argparse.Namespace) -> int:
    from llmguard.sim.provider import SimProvider

    faults = dict(args.fault) or None
    try:
        sim = SimProvider(
            rpm=args.rpm,
            tpm=args.tpm,
            window_s=args.window_s,
            latency_ms=args.latency_ms,
            per_token_ms=args.per_token_ms,
            faults=faults,
            port=args.port,
            seed=args.seed,
        ).start()
    except (OSError, ValueError) as exc:
        print(f"llmguard sim: cannot start on 127.0.0.1:{args.port}: {exc}. Pick another --port (0 = any free one).")
        return 1
    print(f"llmguard sim serving on {sim.base_url}")
    print(f"  OpenAI:    openai.OpenAI(base_url={sim.base_url + '/v1'!r}, api_key='sk-test')")
    print(f"  Anthropic: anthropic.Anthropic(base_url={sim.base_url!r}, api_key='sk-ant-test')")
    print(f"  Gemini:    genai.Client(api_key='test', http_options={{'base_url': {sim.base_url!r}}})")
    print(f"  stats:     {sim.base_url}/_sim/stats   (Ctrl-C to stop)", flush=True)
    _stop_on_signals()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the server cleanly, even when started from a shell that ignores SIGINT
    for background jobs (Python then keeps SIGINT ignored and Ctrl-C would never arrive)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
