"""What `otel=True` adds to a call: the same small chat calls through a guard with and without it, interleaved.

Target (issue 16): at most +0.05 ms per call at the median. The global providers are the real
opentelemetry-sdk as a user sets them up: a TracerProvider with a BatchSpanProcessor (into a
counting exporter, or `--exporter otlp`: the OTLP/HTTP exporter posting to a receiver process on
127.0.0.1) and a MeterProvider. Both arms are checked afterwards: the otel arm exported exactly
one span per call it made, the other none, and each ledger holds its own calls.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import openai
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from llmguard.config import load_settings
from llmguard.intercept import transport
from llmguard.ledger.sqlite import read_events
from llmguard.pipeline.guard import Guard

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli  # noqa: E402
from _simproc import sim_process  # noqa: E402

RECEIVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(f"http://127.0.0.1:{s.server_port}/v1/traces", flush=True)
s.serve_forever()
"""


class CountingExporter(SpanExporter):
    """Counts llmguard's spans (what a real exporter receives), keeping nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += sum(1 for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "llmguard")
        return SpanExportResult.SUCCESS


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(
    quick: bool = False, calls: int | None = None, repeats: int | None = None, exporter: str = "memory"
) -> Outcome:
    calls = calls or (300 if quick else 1000)
    repeats = repeats or 3
    out = Outcome("otel")
    warnings.simplefilter("ignore")
    receiver = None
    counting = CountingExporter()
    span_exporter: SpanExporter = counting
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout is not None
        endpoint = receiver.stdout.readline().strip()
        assert re.match(r"http://127\.0\.0\.1:\d+/v1/traces$", endpoint), endpoint
        span_exporter = OTLPSpanExporter(endpoint=endpoint)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    try:
        run(out, calls, repeats, exporter, provider, counting if exporter == "memory" else None)
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(timeout=10)
    return out


def run(
    out: Outcome, calls: int, repeats: int, exporter: str, provider: TracerProvider, counting: CountingExporter | None
) -> None:
    with sim_process() as base_url, tempfile.TemporaryDirectory() as home_on, tempfile.TemporaryDirectory() as home_off:
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=60)
        on = Guard(load_settings({"home": home_on, "otel": True}))
        off = Guard(load_settings({"home": home_off}))
        assert on.otel is not None and off.otel is None
        messages = [{"role": "user", "content": "Say hi."}]
        made = {"on": 0, "off": 0}

        def call(guard: Guard, arm: str) -> float:
            transport.attach(guard)
            start = time.perf_counter()
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=8)
            elapsed = (time.perf_counter() - start) * 1000
            transport.detach()
            made[arm] += 1
            return elapsed

        for _ in range(200):  # warm up connections, encodings, prices, the SDK's span pipeline
            call(on, "on")
            call(off, "off")
        medians = []
        all_on: list[float] = []
        all_off: list[float] = []
        for repeat in range(repeats):
            with_otel, without = [], []
            for i in range(calls):
                for arm in ("on", "off") if i % 2 else ("off", "on"):
                    (with_otel if arm == "on" else without).append(call(on if arm == "on" else off, arm))
            medians.append((statistics.median(with_otel), statistics.median(without)))
            all_on += with_otel
            all_off += without
            print(
                f"repeat {repeat + 1}: otel {medians[-1][0]:.3f} ms, without {medians[-1][1]:.3f} ms, "
                f"added {medians[-1][0] - medians[-1][1]:+.3f} ms"
            )
        on.otel.flush()
        exported, dropped, failures = on.otel.exported, on.otel.dropped, on.otel.failures
        provider.force_flush()
        on.close()
        off.close()
        rows_on = len(read_events(Path(home_on) / "ledger.sqlite3"))
        rows_off = len(read_events(Path(home_off) / "ledger.sqlite3"))
    # the arms are what they say: one span per otel call, none from the other arm, every call recorded
    out.check(
        exported == made["on"] and dropped == 0 and failures == 0,
        f"otel arm: {exported} spans exported ({dropped} dropped, {failures} failures) for {made['on']} calls",
    )
    if counting is not None:
        out.check(counting.spans == made["on"], f"the exporter received {counting.spans} spans for {made['on']} calls")
    out.check(
        (rows_on, rows_off) == (made["on"], made["off"]),
        f"ledger rows {rows_on} / {rows_off} for {made['on']} / {made['off']} calls",
    )
    med_on, med_off = statistics.median(all_on), statistics.median(all_off)
    added = [a - b for a, b in medians]
    print(f"exporter                : {exporter} (BatchSpanProcessor), {repeats} x {calls} calls per arm")
    print(f"arms verified           : {exported} spans for {made['on']} otel calls, 0 dropped; {made['off']} without")
    print(f"guard + otel    median  : {med_on:.3f} ms   p99 {pct(all_on, 0.99):.3f} ms")
    print(f"guard           median  : {med_off:.3f} ms   p99 {pct(all_off, 0.99):.3f} ms")
    print(f"added latency   median  : {med_on - med_off:+.3f} ms   (target <= 0.050 ms)")
    print(f"added per repeat        : {', '.join(f'{a:+.3f}' for a in added)} ms")
    print(f"added latency   p99     : {pct(all_on, 0.99) - pct(all_off, 0.99):+.3f} ms")
    out.add(Figure("otel=True added latency/call (median of repeats)", statistics.median(added), 0.05, "ms"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls per arm per repeat (default 1000; 300 with --quick)")
    parser.add_argument("--repeats", type=int, help="repeats (default 3)")
    parser.add_argument("--exporter", choices=("memory", "otlp"), default="memory")
    return cli(measure, parser, "otel")


if __name__ == "__main__":
    sys.exit(main())
