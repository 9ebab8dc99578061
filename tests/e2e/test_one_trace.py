"""One trace per event, across processes, exported over OTLP/HTTP.

An OTLP/HTTP receiver runs inside the test on 127.0.0.1 (decoding
``ExportTraceServiceRequest`` protobuf, as a collector would). The services run
as processes configured only through the standard variables
(``OTEL_TRACES_EXPORTER=otlp``, ``OTEL_EXPORTER_OTLP_ENDPOINT``), on topics and
consumer groups of their own next to the ``pipeline`` fixture's (whose sandbox
CRM and database they share). One case event is sent with ``crmpilot produce``'s
traced producer; the test then asserts that a single trace id covers:
send → process in ticket_classifier (messaging attributes) → chat (GenAI
attributes) → process of the result in warehouse_writer and crm_writer → the
CRM HTTP call and the PostgreSQL writes, and that the warehouse row and the CRM
audit rows carry that trace id.
"""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
import typer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from e2e_stack import REPO, Pipeline, Service
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from typer.testing import CliRunner

from crm_sandbox.client import sandbox_salesforce
from crmpilot.cli import ops
from crmpilot.crm.source import case_events, fetch_case_records
from crmpilot.events import result_id_for
from crmpilot.ops.produce import produce_envelopes
from crmpilot.settings import KafkaSettings
from crmpilot.tasks import CLASSIFY_TICKET

pytestmark = pytest.mark.e2e

SERVICES = ("ticket_classifier", "warehouse_writer", "crm_writer")
BOT_TOKEN = "sandbox-integration-token"


# --- an OTLP/HTTP receiver ------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: int


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


class _OTLPHandler(http.server.BaseHTTPRequestHandler):
    spans: ClassVar[list[ReceivedSpan]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest.FromString(body)
        received = []
        for rs in request.resource_spans:
            service = next((_value(a.value) for a in rs.resource.attributes if a.key == "service.name"), "?")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    received.append(
                        ReceivedSpan(
                            service,
                            s.name,
                            ProtoSpan.SpanKind.Name(s.kind),
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in s.attributes},
                            s.status.code,
                        )  # fmt: skip
                    )
        with self.lock:
            self.spans.extend(received)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OTLPHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def spans_of(trace_id: str) -> list[ReceivedSpan]:
    with _OTLPHandler.lock:
        return [s for s in _OTLPHandler.spans if s.trace_id == trace_id]


# --- the services, exporting over OTLP ------------------------------------------------


@dataclass
class Traced:
    case_topic: str
    result_topic: str
    groups: dict[str, str]
    services: dict[str, Service]

    def logs(self) -> str:
        return "\n\n".join(f"--- {n} ---\n{s.tail()}" for n, s in self.services.items())


def _start(name: str, env: dict[str, str], log: Path, timeout: float = 90) -> Service:
    handle = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", name], cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    svc = Service(name, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode} at start:\n{svc.tail()}")
        if "consuming" in log.read_text(errors="replace"):
            return svc
        time.sleep(0.2)
    svc.stop()
    pytest.fail(f"{name} not ready after {timeout} s:\n{svc.tail()}")


@pytest.fixture(scope="module")
def traced(pipeline: Pipeline, receiver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    run = uuid.uuid4().hex[:8]
    case_topic, result_topic = f"e2e.{run}.otel.crm.case.events", f"e2e.{run}.otel.ai.ticket.classified"
    topics = [case_topic, case_topic + ".dlq", result_topic, result_topic + ".dlq"]
    admin = AdminClient({"bootstrap.servers": pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"]})
    for f in admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics]).values():
        f.result()
    groups = {s: f"e2e-{run}-otel-{s}" for s in SERVICES}
    env = {k: v for k, v in pipeline.env.items() if not k.startswith("OTEL_")}
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "CRMPILOT_TICKET_CLASSIFIER_GROUP_ID": groups["ticket_classifier"],
            "CRMPILOT_TICKET_CLASSIFIER_INPUT_TOPIC": case_topic,
            "CRMPILOT_TICKET_CLASSIFIER_OUTPUT_TOPIC": result_topic,
            "CRMPILOT_WAREHOUSE_WRITER_GROUP_ID": groups["warehouse_writer"],
            "CRMPILOT_WAREHOUSE_WRITER_TOPICS": json.dumps([result_topic, case_topic]),
            "CRMPILOT_CRM_WRITER_GROUP_ID": groups["crm_writer"],
            "CRMPILOT_CRM_WRITER_TOPICS": json.dumps([result_topic]),
        }
    )
    logs = tmp_path_factory.mktemp("otel")
    started: dict[str, Service] = {}
    try:
        for name in SERVICES:
            started[name] = _start(name, env, logs / f"{name}.log")
        yield Traced(case_topic, result_topic, groups, started)
    finally:
        for svc in reversed(list(started.values())):
            svc.stop()
        admin.delete_topics(topics, operation_timeout=30)


def wait_for(what: str, check: Callable[[], bool], traced: Traced, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}\n{traced.logs()}")


# --- the test ----------------------------------------------------------------------------


def test_one_trace_covers_the_event_from_send_to_crm_and_warehouse(
    pipeline: Pipeline, traced: Traced, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, BOT_TOKEN)
    (event,) = case_events(fetch_case_records(bot)[:1], source="crm://e2e-otel")
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e-producer"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver}/v1/traces")))
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    (sent,) = produce_envelopes(
        kafka, traced.case_topic, [event], timeout=30, tracer=provider.get_tracer("crmpilot.ops")
    )
    provider.shutdown()
    trace_id = sent.trace_id
    assert trace_id and sent.error is None

    result_id = result_id_for(event.id, CLASSIFY_TICKET.name, CLASSIFY_TICKET.prompt.version)

    def rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        with psycopg.connect(pipeline.database_url) as conn:
            facts = conn.execute(
                "select trace_id from warehouse.fact_ticket_classification where result_id = %s", (result_id,)
            ).fetchall()
            audit = conn.execute(
                "select trace_id, status from warehouse.crm_write_audit where result_id = %s", (result_id,)
            ).fetchall()
        return facts, audit

    wait_for("the warehouse fact and the CRM audit", lambda: all(rows()), traced)

    def by(service: str, name: str | Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
        match = name if callable(name) else (lambda s: s.name == name)
        return [s for s in spans_of(trace_id) if s.service == service and match(s)]

    def http_client(s: ReceivedSpan) -> bool:
        return s.kind == "SPAN_KIND_CLIENT" and "http.request.method" in s.attributes

    def statement(table: str) -> Callable[[ReceivedSpan], bool]:
        return lambda s: s.kind == "SPAN_KIND_CLIENT" and s.name == f"INSERT warehouse.{table}"

    expected: list[tuple[str, str | Callable[[ReceivedSpan], bool]]] = [
        ("e2e-producer", f"send {traced.case_topic}"),
        ("ticket_classifier", f"process {traced.case_topic}"),
        ("ticket_classifier", lambda s: s.name.startswith("chat ")),
        ("warehouse_writer", f"process {traced.result_topic}"),
        ("warehouse_writer", statement("fact_ticket_classification")),
        ("crm_writer", f"process {traced.result_topic}"),
        ("crm_writer", http_client),
        ("crm_writer", statement("crm_write_audit")),
    ]
    wait_for(
        "every span of the trace at the receiver",
        lambda: all(by(service, name) for service, name in expected),
        traced,
        timeout=60,
    )
    spans = spans_of(trace_id)
    ids = {s.span_id for s in spans}

    (send,) = by("e2e-producer", f"send {traced.case_topic}")
    assert send.kind == "SPAN_KIND_PRODUCER" and send.parent_span_id == ""
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == traced.case_topic
    assert send.attributes["messaging.message.id"] == event.id

    (process,) = by("ticket_classifier", f"process {traced.case_topic}")
    assert process.kind == "SPAN_KIND_CONSUMER" and process.parent_span_id == send.span_id
    a = process.attributes
    assert a["messaging.system"] == "kafka" and a["messaging.operation.type"] == "process"
    assert a["messaging.destination.name"] == traced.case_topic
    assert a["messaging.destination.partition.id"] == send.attributes["messaging.destination.partition.id"]
    assert a["messaging.kafka.offset"] == send.attributes["messaging.kafka.offset"] == sent.offset
    assert a["messaging.consumer.group.name"] == traced.groups["ticket_classifier"]
    assert a["messaging.kafka.message.key"] == event.subject

    (chat,) = by("ticket_classifier", lambda s: s.name.startswith("chat "))
    assert chat.kind == "SPAN_KIND_CLIENT" and chat.parent_span_id in ids
    g = chat.attributes
    assert g["gen_ai.operation.name"] == "chat"
    assert g["gen_ai.provider.name"] and g["gen_ai.request.model"] and chat.name == f"chat {g['gen_ai.request.model']}"

    for sink in ("warehouse_writer", "crm_writer"):
        (sink_process,) = by(sink, f"process {traced.result_topic}")
        assert sink_process.parent_span_id in ids  # continues the classifier's context from the result's headers
        assert sink_process.attributes["messaging.consumer.group.name"] == traced.groups[sink]
        assert sink_process.attributes["messaging.kafka.message.key"] == event.subject

    crm_calls = by("crm_writer", http_client)
    assert all(
        c.attributes["server.address"] == "127.0.0.1" and c.attributes["http.response.status_code"] < 400
        for c in crm_calls
    )
    assert all("?" not in c.attributes["url.full"] for c in crm_calls)
    (fact_insert,) = by("warehouse_writer", statement("fact_ticket_classification"))
    assert fact_insert.attributes["db.system.name"] == "postgresql"
    assert all(s.parent_span_id in ids for s in spans if s is not send)  # one connected tree

    facts, audit = rows()
    assert facts == [(trace_id,)]
    assert audit and {t for t, _ in audit} == {trace_id}

    # the operator's view of the same event
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", pipeline.database_url)
    app = typer.Typer()
    app.command("trace")(ops.trace)
    app.command("status")(ops.status)  # two commands: typer would otherwise make `trace` the root command
    shown = CliRunner().invoke(app, ["trace", event.id, "--json"])
    assert shown.exit_code == 0, shown.output
    trail = json.loads(shown.output)
    assert trail["trace_ids"] == [trace_id]
    assert [r["result_id"] for r in trail["results"]] == [result_id]
    assert {w["status"] for w in trail["crm_writes"]} == {s for _, s in audit}
    assert trail["raw_event"]["topic"] == traced.case_topic


def _kafka_tool_rows(bootstrap: str, group: str) -> list[tuple[str, int, str, str, str]]:
    """(topic, partition, current, end, lag) rows of Kafka's own ``consumer-groups --describe``."""
    proc = subprocess.run(
        [
            str(REPO / "infra" / "kafka-cli.sh"),
            "consumer-groups",
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if proc.returncode == 127 or "[stack] ERROR" in proc.stderr:
        pytest.skip(f"Kafka's tools (Java + cached jars) are not available: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    return sorted(
        (f[1], int(f[2]), f[3], f[4], f[5])
        for f in (line.split() for line in proc.stdout.splitlines())
        if len(f) >= 9 and f[0] == group
    )


def test_after_the_pipeline_ran_every_group_has_lag_0_and_kafkas_tool_agrees(
    pipeline: Pipeline, traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"]
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", bootstrap)
    (event,) = case_events(
        fetch_case_records(sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, BOT_TOKEN))[1:2],
        source="crm://e2e-otel",
    )
    produce_envelopes(KafkaSettings(bootstrap=bootstrap), traced.case_topic, [event], timeout=30)
    app = typer.Typer()
    app.command("lag")(ops.lag)
    app.command("status")(ops.status)  # two commands: typer would otherwise make `lag` the root command

    def ours(group: str) -> list[tuple[str, int, str, str, str]]:
        result = CliRunner().invoke(app, ["lag", "--group", group, "--json"])
        assert result.exit_code == 0, result.output
        (described,) = json.loads(result.output)

        def dash(v: object) -> str:
            return "-" if v is None else str(v)

        return sorted(
            (p["topic"], p["partition"], dash(p["committed"]), str(p["end"]), dash(p["lag"]))
            for p in described["partitions"]
        )

    def caught_up(group: str) -> bool:
        rows = ours(group)
        return (
            bool(rows)
            and all(lag == "0" for _, _, _, end, lag in rows if end != "0")
            and any(end != "0" for *_, end, _ in rows)
        )

    for group in traced.groups.values():
        wait_for(f"{group} to commit everything", partial(caught_up, group), traced, timeout=120)
        assert _kafka_tool_rows(bootstrap, group) == ours(group)
