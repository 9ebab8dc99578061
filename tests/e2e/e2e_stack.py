"""End-to-end stack: the real services as processes, on their own topics and database.

Each e2e session gets a fresh database (migrated), fresh topics and its own
consumer groups, and runs ``crm_sandbox``, ``ticket_classifier``,
``email_summarizer``, the enricher of the built-in ``score_request``,
``warehouse_writer`` and ``crm_writer`` exactly as ``infra/services.sh`` does: ``python -m <service>``
configured only through environment variables. The pipeline is shared by the
tier's modules (one start-up); each module sends its own events and looks only
at the results of those.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crmpilot.enrichments import load_registry
from crmpilot.enrichments.warehouse import apply_views
from crmpilot.settings import KafkaSettings
from crmpilot.warehouse import migrate
from tests.netkit import free_port

REPO = Path(__file__).resolve().parents[2]
ENRICHMENTS = REPO / "examples" / "enrichments"
HINT = "start the local stack with `infra/stack.sh up`"


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Topics:
    """The session's topics: sources, results, and the ones the tests make for extra service instances."""

    cases: str
    emails: str
    leads: str
    requests: str
    tickets: str
    summaries: str
    scores: str
    opportunities: str = ""
    enriched: str = ""
    """Declared enrichments (examples/enrichments): their source events and results."""
    extra: list[str] = field(default_factory=list)

    @property
    def results(self) -> tuple[str, str, str]:
        return (self.tickets, self.summaries, self.scores)


@dataclass
class Pipeline:
    env: dict[str, str]
    database_url: str
    sandbox_url: str
    ca_path: Path
    topics: Topics
    groups: dict[str, str]
    admin: AdminClient
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def case_topic(self) -> str:
        return self.topics.cases

    @property
    def result_topic(self) -> str:
        return self.topics.tickets

    def create_topic(self, name: str) -> str:
        """A topic of this session (3 partitions, with its DLQ twin), deleted at the end."""
        names = [name, name + ".dlq"]
        for f in self.admin.create_topics(
            [NewTopic(t, num_partitions=3, replication_factor=1) for t in names]
        ).values():
            f.result()
        self.topics.extra += names
        return name

    def start(
        self,
        name: str,
        *args: str,
        ready: str = "consuming",
        timeout: float = 60,
        label: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Service:
        """Run ``python -m name`` until it is ready; ``label`` names a second instance, ``env`` overrides its
        settings."""
        return self.wait_ready(self.launch(name, *args, label=label, env=env), ready=ready, timeout=timeout)

    def launch(self, name: str, *args: str, label: str | None = None, env: dict[str, str] | None = None) -> Service:
        label = label or name
        log = Path(self.env["E2E_LOG_DIR"]) / f"{label}.log"
        handle = log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", name, *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        svc = Service(label, proc, log)
        self.services[label] = svc
        return svc

    def wait_ready(self, svc: Service, *, ready: str = "consuming", timeout: float = 60) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if svc.proc.poll() is not None:
                pytest.fail(f"{svc.name} exited with {svc.proc.returncode} at start:\n{svc.tail()}")
            if ready in svc.log.read_text(errors="replace"):
                return svc
            time.sleep(0.2)
        pytest.fail(f"{svc.name} not ready after {timeout} s:\n{svc.tail()}")

    def logs(self) -> str:
        return "\n\n".join(f"--- {n} ---\n{s.tail()}" for n, s in self.services.items())


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    bootstrap = os.environ.get("CRMPILOT_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    base_url = os.environ.get("CRMPILOT_DATABASE_URL", "postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot")
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=5)
        with psycopg.connect(base_url, connect_timeout=3, autocommit=True) as conn:
            db = f"crmpilot_e2e_{uuid.uuid4().hex[:10]}"
            conn.execute(f'create database "{db}"')
    except (KafkaException, psycopg.OperationalError) as exc:
        pytest.skip(f"the local stack is not running ({exc}); {HINT}")
    database_url = _with_db(base_url, db)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        apply_views(conn, load_registry([ENRICHMENTS]))

    run = uuid.uuid4().hex[:8]
    t = Topics(
        cases=f"e2e.{run}.crm.case.events",
        emails=f"e2e.{run}.crm.email.events",
        leads=f"e2e.{run}.crm.lead.events",
        requests=f"e2e.{run}.erp.request.events",
        tickets=f"e2e.{run}.ai.ticket.classified",
        summaries=f"e2e.{run}.ai.email.summarized",
        scores=f"e2e.{run}.ai.request.scored",
        opportunities=f"e2e.{run}.crm.opportunity.events",
        enriched=f"e2e.{run}.ai.enrichment",
    )
    sources = [t.cases, t.emails, t.leads, t.requests, t.opportunities]
    topics = [name for topic in (*sources, *t.results, t.enriched) for name in (topic, topic + ".dlq")]
    for f in admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1) for n in topics]).values():
        f.result()
    groups = {
        s: f"e2e-{run}-{s}"
        for s in ("ticket_classifier", "email_summarizer", "score_request", "warehouse_writer", "crm_writer")
    }
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = {
        **os.environ,
        "E2E_LOG_DIR": str(tmp),
        "CRMPILOT_KAFKA_BOOTSTRAP": bootstrap,
        "CRMPILOT_DATABASE_URL": database_url,
        "CRMPILOT_SANDBOX_PORT": str(port),
        "CRMPILOT_SANDBOX_CERT_DIR": str(tmp / "tls"),
        "CRMPILOT_SALESFORCE_INSTANCE_URL": f"https://127.0.0.1:{port}",
        "CRMPILOT_SALESFORCE_CA_BUNDLE": str(tmp / "tls" / "ca.pem"),
        "CRMPILOT_LLM_PROVIDER": "local",
        "CRMPILOT_ENRICHMENTS_DIR": str(ENRICHMENTS),
        "CRMPILOT_TICKET_CLASSIFIER_GROUP_ID": groups["ticket_classifier"],
        "CRMPILOT_TICKET_CLASSIFIER_INPUT_TOPIC": t.cases,
        "CRMPILOT_TICKET_CLASSIFIER_OUTPUT_TOPIC": t.tickets,
        # nothing is skipped for low confidence here, so every CRM write is checked
        "CRMPILOT_TICKET_CLASSIFIER_THRESHOLD_LOW": "0",
        "CRMPILOT_EMAIL_SUMMARIZER_GROUP_ID": groups["email_summarizer"],
        "CRMPILOT_EMAIL_SUMMARIZER_INPUT_TOPIC": t.emails,
        "CRMPILOT_EMAIL_SUMMARIZER_OUTPUT_TOPIC": t.summaries,
        "CRMPILOT_WAREHOUSE_WRITER_GROUP_ID": groups["warehouse_writer"],
        "CRMPILOT_WAREHOUSE_WRITER_TOPICS": json.dumps([*t.results, t.enriched, *sources]),
        "CRMPILOT_CRM_WRITER_GROUP_ID": groups["crm_writer"],
        "CRMPILOT_CRM_WRITER_TOPICS": json.dumps([*t.results, t.enriched]),
    }
    p = Pipeline(env, database_url, f"https://127.0.0.1:{port}", tmp / "tls" / "ca.pem", t, groups, admin)
    try:
        p.start("crm_sandbox", "--seed", "demo", ready="listening on")
        consumers = [
            p.launch(name) for name in ("ticket_classifier", "email_summarizer", "warehouse_writer", "crm_writer")
        ]
        scorer_env = {
            "CRMPILOT_ENRICHER_GROUP_ID": groups["score_request"],
            "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([t.requests, t.leads]),
            "CRMPILOT_ENRICHER_OUTPUT_TOPIC": t.scores,
        }
        consumers.append(p.launch("enricher", "--enrichment", "score_request", label="score_request", env=scorer_env))
        for svc in consumers:
            p.wait_ready(svc)
        yield p
    finally:
        for svc in reversed(list(p.services.values())):
            svc.stop()
        admin.delete_topics(topics + t.extra, operation_timeout=30)
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{db}" with (force)')


def wait_for(what: str, check: Callable[[], bool], pipeline: Pipeline, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}\n{pipeline.logs()}")


def committed_equals_end(pipeline: Pipeline, group: str, topic: str) -> bool:
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    consumer = Consumer({**kafka.librdkafka(), "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        committed = consumer.committed(parts, timeout=10)
        ends = [consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts]
        return all((c.offset if c.offset >= 0 else 0) == end for c, end in zip(committed, ends, strict=True))
    finally:
        consumer.close()


def read_all(pipeline: Pipeline, topic: str) -> list[Any]:
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    consumer = Consumer({**kafka.librdkafka(), "group.id": f"reader-{time.time_ns()}", "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p, 0) for p in range(3)]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
        consumer.assign(parts)
        out: list[Any] = []
        deadline = time.monotonic() + 20
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append(msg)
        return out
    finally:
        consumer.close()


def _with_db(url: str, db: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = db
    return make_conninfo("", **params)
