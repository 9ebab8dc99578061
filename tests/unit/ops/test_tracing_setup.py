"""``setup_tracing``: exporters chosen by ``OTEL_*`` variables, refused when unsupported, HTTP client spans.

The global tracer provider can be installed once per process, so the end-to-end
checks run a short Python program in a subprocess with the console exporter.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from crmpilot.telemetry.setup import (
    TelemetryConfigError,
    _check_propagators,
    _db_attributes,
    _exporters,
    _metric_exporters,
)

PROGRAM = textwrap.dedent(
    """
    import http.server, json, threading, requests
    from opentelemetry import trace
    from crmpilot.telemetry.setup import setup_tracing

    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen["traceparent"] = self.headers.get("traceparent")
            self.send_response(404 if "missing" in self.path else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    provider = setup_tracing("default-name")
    assert setup_tracing("again") is provider
    requests.get(url + "/outside?q=1")  # no trace: no span, no header
    outside = seen.pop("traceparent")
    with trace.get_tracer("test").start_as_current_span("process t") as span:
        requests.get(url + "/sobjects/Case?q=secret")
        requests.get(url + "/missing")
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    print(json.dumps({"outside": outside, "inside": seen["traceparent"], "trace_id": trace_id}))
    """
)


def _run(env: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    spans, buf, depth = [], "", 0
    for line in proc.stdout.splitlines()[:-1]:  # console spans are pretty-printed JSON objects
        buf += line + "\n"
        depth += line.count("{") - line.count("}")
        if depth == 0 and buf.strip():
            spans.append(json.loads(buf))
            buf = ""
    return json.loads(proc.stdout.splitlines()[-1]), spans


def test_console_exporter_and_http_client_spans_inside_a_trace_only() -> None:
    result, spans = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "svc-from-env"})
    assert result["outside"] is None
    assert result["inside"].split("-")[1] == result["trace_id"]
    clients = [s for s in spans if s["kind"] == "SpanKind.CLIENT"]
    assert [s["name"] for s in clients] == ["GET", "GET"]
    ok, missing = sorted(clients, key=lambda s: s["attributes"]["http.response.status_code"])
    assert ok["attributes"]["url.full"].endswith("/sobjects/Case")  # the query string is never recorded
    assert ok["attributes"]["server.address"] == "127.0.0.1"
    assert ok["status"]["status_code"] == "UNSET"
    assert missing["attributes"]["error.type"] == "404" and missing["status"]["status_code"] == "ERROR"
    assert {s["context"]["trace_id"] for s in spans} == {"0x" + result["trace_id"]}
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"svc-from-env"}


def test_default_exports_nothing_but_still_propagates() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["inside"].split("-")[1] == result["trace_id"]


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _export_one(exporter: SpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("test").start_span("one").end()
    provider.shutdown()


def test_otlp_exporter_posts_protobuf_where_the_standard_variables_say(
    monkeypatch: pytest.MonkeyPatch, collector: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector + "/base/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=abc")
    (otlp,) = _exporters({"OTEL_TRACES_EXPORTER": "otlp"})
    _export_one(otlp)
    path, headers, body = _Collector.received.pop()
    assert path == "/base/v1/traces"
    assert headers["content-type"] == "application/x-protobuf" and headers["x-honeycomb-team"] == "abc"
    request = ExportTraceServiceRequest.FromString(body)
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "one"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector + "/tempo/v1/traces")
    both = _exporters({"OTEL_TRACES_EXPORTER": "otlp, console"})
    assert [type(e).__name__ for e in both] == ["OTLPSpanExporter", "ConsoleSpanExporter"]
    _export_one(both[0])
    assert _Collector.received.pop()[0] == "/tempo/v1/traces"
    assert _exporters({}) == [] and _exporters({"OTEL_TRACES_EXPORTER": "none"}) == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "jaeger not supported"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "'grpc' is not installed"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_unsupported_exporters_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(TelemetryConfigError, match=message):
        _exporters(env)


def test_propagators_must_include_w3c_tracecontext() -> None:
    _check_propagators({})
    _check_propagators({"OTEL_PROPAGATORS": "tracecontext,baggage"})
    with pytest.raises(TelemetryConfigError, match="tracecontext"):
        _check_propagators({"OTEL_PROPAGATORS": "b3"})


class _Info:
    dbname, host, port = "crmpilot", "127.0.0.1", 55432


class _Conn:
    info = _Info()


class _Cursor:
    connection = _Conn()


def test_statement_spans_are_named_by_operation_and_table() -> None:
    name, attrs = _db_attributes(_Cursor(), 'insert into "warehouse"."raw_events" ("event_id") values (%s)')
    assert name == "INSERT warehouse.raw_events"
    assert attrs["db.system.name"] == "postgresql" and attrs["db.namespace"] == "crmpilot"
    assert attrs["db.collection.name"] == "warehouse.raw_events" and attrs["server.port"] == 55432
    name, attrs = _db_attributes(_Cursor(), "select 1")
    assert name == "SELECT" and "db.collection.name" not in attrs
    long = "select * from t where x in (" + ", ".join(["%s"] * 2000) + ")"
    assert len(_db_attributes(_Cursor(), long)[1]["db.query.text"]) == 1000


METRICS_PROGRAM = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import metrics
    from crmpilot.events import CaseEvent
    from crmpilot.llm import LLMClient
    from crmpilot.llm.testing.fake import FakeProvider
    from crmpilot.tasks import CLASSIFY_TICKET, ticket_payload
    from crmpilot.telemetry.setup import setup_tracing

    ANSWER = {
        "category": "Payments", "queue": "billing", "priority": "High", "sentiment": "negative", "language": "en",
        "escalate": False, "escalation_reason": None, "rationale": "card declined",
        "confidence": {"category": 0.9, "priority": 0.8, "sentiment": 0.7, "language": 0.99},
    }

    async def main():
        setup_tracing("classifier")
        llm = LLMClient(FakeProvider(lambda spec, payload: ANSWER, tokens=(120, 30)))  # the global meter provider
        case = CaseEvent(
            case_id="500000000000001AAA", subject="Card declined", description="At checkout.", origin="Web"
        )
        await llm.run(CLASSIFY_TICKET, ticket_payload(case))
        await llm.aclose()

    asyncio.run(main())
    metrics.get_meter_provider().shutdown()  # flushes the periodic reader
    """
)


def test_genai_metrics_go_to_the_otlp_collector_when_asked(collector: str) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_SERVICE_NAME": "tickets"}
    proc = subprocess.run([sys.executable, "-c", METRICS_PROGRAM], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

    posts = [
        ExportMetricsServiceRequest.FromString(body) for path, _, body in _Collector.received if path == "/v1/metrics"
    ]
    assert posts, f"no POST to /v1/metrics: {[p for p, _, _ in _Collector.received]}"
    points: dict[str, Any] = {}
    for request in posts:
        for rm in request.resource_metrics:
            assert {a.key: a.value.string_value for a in rm.resource.attributes}["service.name"] == "tickets"
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points[m.name] = m
    usage = points["gen_ai.client.token.usage"].histogram.data_points
    by_type = {next(a.value.string_value for a in p.attributes if a.key == "gen_ai.token.type"): p.sum for p in usage}
    assert by_type == {"input": 120, "output": 30}
    assert points["gen_ai.client.operation.duration"].histogram.data_points[0].count == 1


def test_metrics_exporter_is_none_unless_asked_and_refused_when_unknown() -> None:
    assert _metric_exporters({}) == [] and _metric_exporters({"OTEL_METRICS_EXPORTER": "none"}) == []
    assert [type(e).__name__ for e in _metric_exporters({"OTEL_METRICS_EXPORTER": "console"})] == [
        "ConsoleMetricExporter"
    ]
    with pytest.raises(TelemetryConfigError, match="prometheus not supported"):
        _metric_exporters({"OTEL_METRICS_EXPORTER": "prometheus"})
    with pytest.raises(TelemetryConfigError, match="'grpc' is not installed"):
        _metric_exporters({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"})
