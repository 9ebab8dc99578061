"""End-to-end stack: the real services as processes, on their own topics and database.

Each e2e session gets a fresh database (migrated), fresh topics and its own
consumer groups, and runs ``crm_sandbox``, ``ticket_classifier``,
``warehouse_writer`` and ``crm_writer`` exactly as ``infra/services.sh`` does:
``python -m <service>`` configured only through environment variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crmpilot.warehouse import migrate

REPO = Path(__file__).resolve().parents[2]
HINT = "start the local stack with `infra/stack.sh up`"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
class Pipeline:
    env: dict[str, str]
    database_url: str
    sandbox_url: str
    ca_path: Path
    case_topic: str
    result_topic: str
    groups: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)

    def start(self, name: str, *args: str, ready: str = "consuming", timeout: float = 60) -> Service:
        log = Path(self.env["E2E_LOG_DIR"]) / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen([sys.executable, "-m", name, *args], cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        svc = Service(name, proc, log)
        self.services[name] = svc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode} at start:\n{svc.tail()}")
            if ready in log.read_text(errors="replace"):
                return svc
            time.sleep(0.2)
        pytest.fail(f"{name} not ready after {timeout} s:\n{svc.tail()}")

    def logs(self) -> str:
        return "\n\n".join(f"--- {n} ---\n{s.tail()}" for n, s in self.services.items())


@pytest.fixture(scope="module")
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

    run = uuid.uuid4().hex[:8]
    case_topic, result_topic = f"e2e.{run}.crm.case.events", f"e2e.{run}.ai.ticket.classified"
    topics = [case_topic, case_topic + ".dlq", result_topic, result_topic + ".dlq"]
    for f in admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics]).values():
        f.result()
    groups = {s: f"e2e-{run}-{s}" for s in ("ticket_classifier", "warehouse_writer", "crm_writer")}
    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
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
        "CRMPILOT_TICKET_CLASSIFIER_GROUP_ID": groups["ticket_classifier"],
        "CRMPILOT_TICKET_CLASSIFIER_INPUT_TOPIC": case_topic,
        "CRMPILOT_TICKET_CLASSIFIER_OUTPUT_TOPIC": result_topic,
        # nothing is skipped for low confidence here, so every CRM write is checked
        "CRMPILOT_TICKET_CLASSIFIER_THRESHOLD_LOW": "0",
        "CRMPILOT_WAREHOUSE_WRITER_GROUP_ID": groups["warehouse_writer"],
        "CRMPILOT_WAREHOUSE_WRITER_TOPICS": f'["{result_topic}", "{case_topic}"]',
        "CRMPILOT_CRM_WRITER_GROUP_ID": groups["crm_writer"],
        "CRMPILOT_CRM_WRITER_TOPICS": f'["{result_topic}"]',
    }
    p = Pipeline(env, database_url, f"https://127.0.0.1:{port}", tmp / "tls" / "ca.pem", case_topic, result_topic, groups)
    try:
        p.start("crm_sandbox", "--seed", "demo", ready="listening on")
        for name in ("ticket_classifier", "warehouse_writer", "crm_writer"):
            p.start(name)
        yield p
    finally:
        for svc in reversed(list(p.services.values())):
            svc.stop()
        admin.delete_topics(topics, operation_timeout=30)
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{db}" with (force)')


def _with_db(url: str, db: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = db
    return make_conninfo(**params)
