"""``crmpilot status`` and ``crmpilot produce`` against the real broker.

``status`` probes services' ``/readyz`` (here: small HTTP servers answering 200
and 503, and a port where nothing listens) found from ``CRMPILOT_<SERVICE>_HTTP_PORT``
and ``--endpoint``. ``produce`` runs in a process of its own with the console
span exporter, so its ``send`` spans can be read and matched to the records.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from typer.testing import CliRunner

from crmpilot.events import decode
from tests.kafkakit import headers_of, key_of

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"


def _health_server(code: int) -> tuple[http.server.HTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok" if code == 200 else "unavailable", "reason": "no partitions"}).encode()
            self.send_response(code if self.path == "/readyz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_port


@pytest.fixture
def health() -> Iterator[tuple[int, int, int]]:
    ready, ready_port = _health_server(200)
    not_ready, not_ready_port = _health_server(503)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    yield ready_port, not_ready_port, closed_port
    ready.shutdown()
    not_ready.shutdown()


def test_status_reports_kafka_groups_and_each_services_readiness(
    ops_app: typer.Typer,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    health: tuple[int, int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ready_port, not_ready_port, closed_port = health
    for name in (
        "TICKET_CLASSIFIER",
        "EMAIL_SUMMARIZER",
        "WAREHOUSE_WRITER",
        "CRM_WRITER",
        "CRM_SOURCE",
    ):
        monkeypatch.delenv(f"CRMPILOT_{name}_HTTP_PORT", raising=False)
    monkeypatch.delenv("CRMPILOT_OPS_ENDPOINTS", raising=False)
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("CRMPILOT_TICKET_CLASSIFIER_HTTP_PORT", str(ready_port))
    topic, group = unique_topic("status", partitions=2), unique_name("statusgroup")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(5):
        producer.produce(topic, b"x", partition=i % 2)
    assert producer.flush(30) == 0
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 2)], asynchronous=False)
    committer.close()

    result = CliRunner().invoke(
        ops_app,
        ["status", "--json", "--group-prefix", group, "--timeout", "5",
         "--endpoint", f"crm_writer=http://127.0.0.1:{not_ready_port}", "--endpoint", f"gone=http://127.0.0.1:{closed_port}"],
    )  # fmt: skip
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["healthy"] is False  # two services are not ready
    assert report["kafka"]["brokers"] >= 1 and report["kafka_error"] is None
    assert report["topics"] and all({"name", "present"} <= t.keys() for t in report["topics"])
    (described,) = report["groups"]
    assert described["group"] == group and described["state"] == "empty"
    assert sum(p["lag"] for p in described["partitions"]) == (3 - 1) + (2 - 2)
    services = {s["service"]: s for s in report["services"]}
    assert services["ticket_classifier"]["ready"] is True  # found from CRMPILOT_TICKET_CLASSIFIER_HTTP_PORT
    assert services["ticket_classifier"]["url"] == f"http://127.0.0.1:{ready_port}/readyz"
    assert services["crm_writer"]["ready"] is False and "503" in services["crm_writer"]["detail"]
    assert services["gone"]["ready"] is False and "no answer" in services["gone"]["detail"]

    text = CliRunner().invoke(ops_app, ["status", "--group-prefix", group, "--timeout", "5"])
    assert "Kafka" in text.output and group in text.output and "ticket_classifier" in text.output


PRODUCE = textwrap.dedent(
    """
    import sys, typer
    from crmpilot.cli import ops
    app = typer.Typer()
    app.command("produce")(ops.produce)
    app.command("trace")(ops.trace)
    app(sys.argv[1:])
    """
)


def test_produce_sends_valid_sample_events_each_in_its_own_send_span(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("produce", partitions=3)
    env = {**os.environ, "CRMPILOT_KAFKA_BOOTSTRAP": kafka_bootstrap, "OTEL_TRACES_EXPORTER": "console"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PRODUCE,
            "produce",
            topic,
            "--type",
            "crm.case.created",
            "--sample",
            "4",
            "--seed",
            "3",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    start = proc.stdout.index("[\n")  # the JSON result; console spans follow it
    rows = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    assert len(rows) == 4 and all(r["error"] is None and r["trace_id"] for r in rows)
    send_spans = [s for s in proc.stdout.split("\n}\n") if f'"name": "send {topic}"' in s]
    assert len(send_spans) == 4 and all('"kind": "SpanKind.PRODUCER"' in s for s in send_spans)

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
    records: list[Message] = []
    while len(records) < 4:
        records += [m for m in consumer.consume(10, 5) if m.error() is None]
    consumer.close()
    by_id = {r["event_id"]: r for r in rows}
    for m in records:
        event = decode(m.value())
        row = by_id[event.id]
        assert key_of(m).decode() == event.subject == row["key"]
        assert (m.partition(), m.offset()) == (row["partition"], row["offset"])
        traceparent = headers_of(m)["traceparent"].decode()
        assert traceparent.split("-")[1] == row["trace_id"]


def test_status_names_each_declared_enrichment_with_its_enrichers_group_and_lag(
    ops_app: typer.Typer,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.delenv("CRMPILOT_OPS_ENDPOINTS", raising=False)
    topic = unique_topic("opps", partitions=1)
    suffix = uuid.uuid4().hex[:8]
    running, idle = f"churn_{suffix}", f"idle_{suffix}"
    example = (EXAMPLES / "churn_risk.yaml").read_text()
    for name, crm_object in ((running, "Opportunity"), (idle, "Lead")):
        spec = example.replace("name: churn_risk", f"name: {name}").replace("[crm.opportunity.events]", f"[{topic}]")
        spec = spec.replace("object: Opportunity", f"object: {crm_object}")  # two specs may not write one field
        (tmp_path / f"{name}.yaml").write_text(spec)
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_BUILTIN", "false")  # only the two specs of this test
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(4):
        producer.produce(topic, b"x")
    assert producer.flush(30) == 0
    committer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"crmpilot-enricher-{running}", "enable.auto.commit": False}
    )
    committer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    committer.close()

    result = CliRunner().invoke(ops_app, ["status", "--json", "--group-prefix", "crmpilot-enricher-", "--timeout", "5"])
    report = json.loads(result.output)
    shown = {e["name"]: e for e in report["enrichments"]}
    assert report["enrichments_error"] is None
    assert set(shown) == {running, idle}
    assert shown[running]["group"] == f"crmpilot-enricher-{running}" and shown[running]["topics"] == [topic]
    assert shown[running]["lag"] == 3 and shown[running]["members"] == 0  # committed 1 of 4, nobody consuming now
    assert shown[idle]["lag"] is None  # its enricher never ran
    text = CliRunner().invoke(ops_app, ["status", "--group-prefix", "crmpilot-enricher-", "--timeout", "5"])
    assert "Enrichments" in text.output and running in text.output and "not running" in text.output

    (tmp_path / f"{idle}.yaml").write_text(
        example.replace("name: churn_risk", f"name: {idle}").replace("type: enum", "type: picklist")
    )
    broken = CliRunner().invoke(ops_app, ["status", "--json", "--group-prefix", "crmpilot-enricher-", "--timeout", "5"])
    report = json.loads(broken.output)
    assert broken.exit_code == 1 and report["healthy"] is False
    assert f"{idle}.yaml:" in report["enrichments_error"]  # the file and line of the bad spec
