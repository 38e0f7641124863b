"""OpenTelemetry out: each call one GenAI span (and metric points) whose figures are the provider's books.

The real opentelemetry-sdk is the global provider (as a user would configure it); spans are
collected with its InMemorySpanExporter, metrics with its InMemoryMetricReader, and over the wire
with the OTLP/HTTP exporter posting to a receiver in this file that decodes the protobuf with
opentelemetry-proto. Token counts are the simulator's (tiktoken); dollars are worked out by hand
from the published prices. The anthropic SDK emits a span of its own per call ("anthropic.messages
.create"): llmguard's are told apart by their instrumentation scope, `llmguard`.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import llmguard
from llmguard.config import load_settings
from llmguard.ledger.records import CallEvent
from tests.conftest import FAKE_OPENAI_KEY, anthropic_client, openai_client, rows

SAY_HI = [{"role": "user", "content": "Say hi."}]  # 10 prompt tokens on both providers (the sim's count)


class _Fanout(SpanProcessor):
    """The one processor of the global provider (which can be set once per process): each test
    points it at its own exporters."""

    def __init__(self) -> None:
        self.targets: list[SpanProcessor] = []

    def on_end(self, span: ReadableSpan) -> None:
        for target in list(self.targets):
            target.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(target.force_flush(timeout_millis) for target in list(self.targets))


_FANOUT = _Fanout()
_READER = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})


@pytest.fixture(scope="module", autouse=True)
def _global_providers():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    trace.get_tracer_provider().add_span_processor(_FANOUT)  # type: ignore[attr-defined]
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    yield


@pytest.fixture
def spans():
    """The finished spans of this test, collected in memory."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    _FANOUT.targets.append(processor)
    _READER.get_metrics_data()  # delta temporality: what earlier tests recorded is read away
    yield exporter
    _FANOUT.targets.remove(processor)


def ours(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "llmguard"]


def histogram_points() -> dict[str, list[tuple[dict, int, float]]]:
    """(attributes, count, sum) of each point of each histogram since the last read, by metric name."""
    data = _READER.get_metrics_data()
    found: dict[str, list[tuple[dict, int, float]]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = [(dict(p.attributes), p.count, p.sum) for p in metric.data.data_points]
                found.setdefault(metric.name, []).extend(points)
    return found


def five_calls(sim, user_span_name: str = "notebook cell") -> tuple[list[tuple[int, int]], trace.Span]:
    """An openai call, an openai stream, an anthropic call, a refusal, a cache hit; their time windows."""
    tracer = trace.get_tracer("tests")
    client = openai_client(sim)
    windows = []

    def timed(call):
        before = time.time_ns()
        call()
        windows.append((before, time.time_ns()))

    with tracer.start_as_current_span(user_span_name) as user_span:
        timed(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5, temperature=0))
        timed(
            lambda: [
                c
                for c in client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=7, stream=True)
            ]
        )
        timed(
            lambda: anthropic_client(sim).messages.create(
                model="claude-3-5-haiku-latest", max_tokens=9, messages=SAY_HI
            )
        )

        def refused():
            with llmguard.tag(tenant="capped"), pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)

        timed(refused)
        timed(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5, temperature=0))
    return windows, user_span


def install_with_otel(home, **settings):
    return llmguard.install(home=str(home), otel=True, quotas={"tenant:capped": {"usd_per_run": 0.0}}, **settings)


def test_each_call_is_one_genai_span_whose_tokens_are_the_providers_books(fresh_sim, home, spans):
    guard = install_with_otel(home)
    windows, user_span = five_calls(fresh_sim)
    ledger_rows = rows(guard)
    llmguard.uninstall()  # exports what is queued

    found = sorted(ours(spans), key=lambda s: s.start_time)
    assert [s.name for s in found] == ["chat gpt-4o-mini"] * 2 + ["chat claude-3-5-haiku-latest"] + [
        "chat gpt-4o-mini"
    ] * 2
    assert all(s.kind is SpanKind.CLIENT for s in found)
    plain, stream, claude, refusal, hit = (dict(s.attributes) for s in found)

    # the provider's books, span by span and in total: the sim counted 10 prompt tokens per call
    billed = fresh_sim.stats["models"]
    for model in ("gpt-4o-mini", "claude-3-5-haiku-latest"):
        on_spans = [s.attributes for s in found if s.attributes["gen_ai.request.model"] == model]
        assert sum(a.get("gen_ai.usage.input_tokens", 0) for a in on_spans) == billed[model]["input_tokens"]
        assert sum(a.get("gen_ai.usage.output_tokens", 0) for a in on_spans) == billed[model]["output_tokens"]
    assert (billed["gpt-4o-mini"]["input_tokens"], billed["gpt-4o-mini"]["output_tokens"]) == (20, 12)
    assert (billed["claude-3-5-haiku-latest"]["input_tokens"], billed["claude-3-5-haiku-latest"]["output_tokens"]) == (
        10,
        9,
    )

    assert plain["gen_ai.provider.name"] == "openai" and plain["gen_ai.operation.name"] == "chat"
    assert plain["gen_ai.response.model"] == "gpt-4o-mini"
    assert (plain["gen_ai.usage.input_tokens"], plain["gen_ai.usage.output_tokens"]) == (10, 5)
    assert plain["gen_ai.request.max_tokens"] == 5
    assert plain["gen_ai.response.finish_reasons"] == ("length",)  # 5 tokens, cut at max_tokens
    assert plain["llmguard.cost_usd"] == pytest.approx(4.5e-06)  # 10*0.15 + 5*0.60 = 4.5 micro-dollars
    assert plain["llmguard.decision"] == "process" and plain["llmguard.cache_hit"] is False
    assert (plain["llmguard.queue_ms"], plain["llmguard.retry_ms"], plain["llmguard.retries"]) == (0.0, 0.0, 0)
    assert plain["server.address"] == "127.0.0.1" and plain["server.port"] == fresh_sim.port

    assert (stream["gen_ai.usage.input_tokens"], stream["gen_ai.usage.output_tokens"]) == (10, 7)
    assert stream["llmguard.stream"] is True and stream["gen_ai.response.time_to_first_chunk"] > 0
    assert stream["llmguard.cost_usd"] == pytest.approx(5.7e-06)  # 10*0.15 + 7*0.60 = 5.7

    assert claude["gen_ai.provider.name"] == "anthropic" and claude["gen_ai.request.max_tokens"] == 9
    assert claude["llmguard.cost_usd"] == pytest.approx(4.4e-05)  # 10*0.80 + 9*4.00 = 44 micro-dollars

    assert refusal["error.type"] == "budget" and refusal["llmguard.status"] == "refused"
    assert refusal["llmguard.tenant"] == "capped" and refusal["llmguard.decision"] == "reject"
    assert "gen_ai.usage.input_tokens" not in refusal and "gen_ai.response.model" not in refusal  # never sent
    assert found[3].status.status_code is StatusCode.ERROR
    assert found[3].status.description.startswith("llmguard: tenant:capped usd_per_run would be exceeded")

    assert hit["llmguard.cache_hit"] is True and hit["llmguard.decision"] == "cache"
    assert (hit["gen_ai.usage.input_tokens"], hit["gen_ai.usage.output_tokens"]) == (0, 0)  # the provider saw none
    assert hit["llmguard.saved_usd"] == pytest.approx(4.5e-06)

    # each span starts when its call did and lasts what the ledger says it took, not when it was exported
    for span, row, (before, after) in zip(found, ledger_rows, windows, strict=True):
        assert span.attributes["llmguard.request_id"] == row["request_id"]
        assert before <= span.start_time <= after
        assert abs(span.start_time - row["ts"] * 1e9) < 1_000  # ns (float rounding)
        assert abs((span.end_time - span.start_time) - row["total_ms"] * 1e6) < 1_000
    # under the span that was current where the call was made (the anthropic SDK's own span sits between)
    assert {s.context.trace_id for s in found} == {user_span.get_span_context().trace_id}
    assert [s.parent.span_id for i, s in enumerate(found) if i != 2] == [user_span.get_span_context().span_id] * 4
    # no prompt or answer text without otel_content
    assert not [k for s in found for k in s.attributes if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.sys"))]

    # the GenAI client metrics: tokens of the calls the provider served, a duration for every call
    points = histogram_points()
    tokens = {
        (a["gen_ai.request.model"], a["gen_ai.token.type"]): (n, total)
        for a, n, total in points["gen_ai.client.token.usage"]
    }
    assert tokens == {
        ("gpt-4o-mini", "input"): (2, 20),
        ("gpt-4o-mini", "output"): (2, 12),
        ("claude-3-5-haiku-latest", "input"): (1, 10),
        ("claude-3-5-haiku-latest", "output"): (1, 9),
    }
    durations = points["gen_ai.client.operation.duration"]
    assert sum(n for _, n, _ in durations) == 5
    assert [a.get("error.type") for a, _, _ in durations if "error.type" in a] == ["budget"]
    assert sum(total for _, _, total in durations) == pytest.approx(sum(r["total_ms"] for r in ledger_rows) / 1000)


def test_prompt_and_answer_text_only_with_otel_content(fresh_sim, home, spans):
    install_with_otel(home, otel_content=True)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    answer = openai_client(fresh_sim).chat.completions.create(
        model="gpt-4o-mini", messages=messages, max_tokens=5, temperature=0
    )
    llmguard.uninstall()
    (span,) = ours(spans)
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hi."}]},
    ]
    assert json.loads(span.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": answer.choices[0].message.content}],
            "finish_reason": "length",
        }
    ]


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace endpoint: decodes each ExportTraceServiceRequest with opentelemetry-proto."""

    received: list = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append((self.path, request))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind)


def test_the_same_spans_arrive_over_otlp_http(fresh_sim, home, spans):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    otlp = SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces"))
    _FANOUT.targets.append(otlp)
    try:
        install_with_otel(home)
        five_calls(fresh_sim)
        llmguard.uninstall()
    finally:
        _FANOUT.targets.remove(otlp)
        otlp.shutdown()
        server.shutdown()
        server.server_close()
    arrived = {}
    for path, request in _Receiver.received:
        assert path == "/v1/traces"
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                if scope_spans.scope.name == "llmguard":
                    for span in scope_spans.spans:
                        arrived[span.span_id] = span
    local = ours(spans)
    assert len(arrived) == len(local) == 5
    for span in local:
        wire = arrived[span.context.span_id.to_bytes(8, "big")]
        assert wire.name == span.name and wire.kind == 3  # SPAN_KIND_CLIENT
        assert (wire.start_time_unix_nano, wire.end_time_unix_nano) == (span.start_time, span.end_time)
        assert {a.key: _value(a.value) for a in wire.attributes} == dict(span.attributes)
    billed = fresh_sim.stats["models"]
    over_wire: dict[str, int] = {}  # the prompt tokens that crossed the wire, per model
    for wire in arrived.values():
        attrs = {a.key: _value(a.value) for a in wire.attributes}
        model = attrs["gen_ai.request.model"]
        over_wire[model] = over_wire.get(model, 0) + attrs.get("gen_ai.usage.input_tokens", 0)
    assert (
        over_wire
        == {m: billed[m]["input_tokens"] for m in billed}
        == {
            "gpt-4o-mini": 20,
            "claude-3-5-haiku-latest": 10,
        }
    )


def _fragments(key: str, size: int = 8) -> set[str]:
    secret = key.split("-test-", 1)[-1]
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_no_secret_reaches_a_span(fresh_sim, home, spans):
    install_with_otel(home, otel_content=True)
    fresh_sim.configure(faults=["echo_key"])  # the provider's error quotes the key
    with pytest.raises(openai.AuthenticationError):
        openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)
    llmguard.uninstall()
    (span,) = ours(spans)
    assert span.attributes["error.type"] and span.status.status_code is StatusCode.ERROR
    seen = " ".join([span.name, str(span.status.description), json.dumps(dict(span.attributes), default=str)])
    assert "Incorrect API key provided" in seen  # the provider's words still arrive, scrubbed
    assert [f for f in _fragments(FAKE_OPENAI_KEY) if f in seen] == []


def test_a_password_in_the_base_url_is_not_exported():
    from llmguard.telemetry import attributes

    event = CallEvent(provider="openai", endpoint="chat.completions", base_url="https://bob:hunter2@gw.example:8443")
    attrs = attributes.span_attributes(event)
    assert (attrs["server.address"], attrs["server.port"]) == ("gw.example", 8443)
    assert "hunter2" not in json.dumps(attrs) and "bob" not in json.dumps(attrs)


def test_a_full_queue_drops_calls_and_says_how_many(spans):
    from llmguard.telemetry.otel import OtelExporter

    exporter = OtelExporter(capacity=2, interval_s=3600)  # the thread sleeps until close wakes it
    for i in range(5):
        exporter.submit(CallEvent(provider="openai", endpoint="chat.completions", model=f"m{i}", total_ms=1.0))
    assert exporter.dropped == 3
    with pytest.warns(RuntimeWarning, match=r"llmguard: 3 call\(s\) were not exported to OpenTelemetry"):
        exporter.close()
    assert [s.name for s in ours(spans)] == ["chat m0", "chat m1"]


def test_otel_from_the_environment_and_pyproject(tmp_path):
    assert load_settings(start=tmp_path, environ={"LLMGUARD_OTEL": "true"}).otel is True
    (tmp_path / "pyproject.toml").write_text("[tool.llmguard]\notel = true\notel_content = true\n")
    settings = load_settings(start=tmp_path, environ={})
    assert (settings.otel, settings.otel_content) == (True, True)
    assert load_settings(start=tmp_path, environ={"LLMGUARD_OTEL": "0"}).otel is False


def test_turning_otel_off_and_on_on_a_running_guard(fresh_sim, home, spans):
    guard = install_with_otel(home)
    guard.configure(otel=False)
    assert guard.otel is None
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)
    guard.configure(otel=True)
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=6)
    llmguard.uninstall()
    assert [s.attributes["gen_ai.request.max_tokens"] for s in ours(spans)] == [6]


@pytest.mark.parametrize("how", ["code", "env"])
def test_without_opentelemetry_installed_otel_true_is_one_clear_error(tmp_path, how):
    """A process where `opentelemetry` cannot be imported (as when the extra is not installed)."""
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import llmguard\n"
        f"llmguard.install(home={str(tmp_path / 'home')!r}{', otel=True' if how == 'code' else ''})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(llmguard.__file__).resolve().parents[1])}
    env.pop("LLMGUARD_OTEL", None)
    if how == "env":
        env["LLMGUARD_OTEL"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("llmguard.config.ConfigError: llmguard: otel=True exports every call to OpenTelemetry")
    assert "pip install 'llmguard[otel]'" in last and "or set otel=False" in last


def test_no_spans_without_otel(fresh_sim, home, spans):
    guard = llmguard.install(home=str(home))
    assert guard.otel is None
    openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=SAY_HI, max_tokens=5)
    llmguard.uninstall()
    assert ours(spans) == []
