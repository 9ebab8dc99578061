"""After a run of the whole pipeline at DEBUG, no service log contains a planted secret.

The five consumer services (the request scorer is the built-in ``score_request``
enrichment, ``enricher@score_request``) and the CRM sandbox run as processes (as
``infra/services.sh`` runs them, configured only through the environment) on
the local stack, on their own topics and database, every one at log level
DEBUG. Their secrets are planted: a distinctive OpenAI API key (the model is
the OpenAI-protocol test server, which answers 429, 500 and invalid JSON
before valid answers, so the error paths log too), a distinctive Salesforce
session token (the sandbox accepts it; its API limit is hit once) and the
database URL with its password. Events of the three flows and poison records
go through; then every log is searched for each secret.

The sandbox's own log is searched for the API key and the database password
only: it is the fake Salesforce, and its start banner prints the session
tokens it accepts, by design, for developers.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crmpilot.events import CaseEvent, EmailReceived, Envelope, RequestSubmitted, encode
from crmpilot.llm.testing import (
    ChatRequest,
    OpenAITestServer,
    invalid_json,
    rate_limited,
    server_error,
)
from crmpilot.warehouse import migrate
from tests.netkit import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PLANTED_KEY = "sk-logscan-PLANTED-" + "5eed" * 8
PLANTED_SESSION = "00Dlogscan!PLANTED.sess." + "c0de" * 8
CONSUMERS = (
    "ticket_classifier",
    "email_summarizer",
    "enricher",
    "warehouse_writer",
    "crm_writer",
)
ARGS = {"enricher": ("--enrichment", "score_request")}  # enricher@score_request, as infra/services.sh starts it
N = 6


def _answer(req: ChatRequest) -> Any:
    system = str(req.messages[0].get("content") or "")
    if system.startswith("You summarize customer emails"):
        return {"summary": "Asks about an order.", "intent": "question", "sentiment": "neutral", "urgency": "normal",
                "action_items": [], "entities": [], "confidence": 0.9}  # fmt: skip
    if system.startswith("You score incoming"):  # the score_request spec's prompt; band and reasons are derived
        return {
            "score": 60,
            "factors": [{"name": "seats stated", "direction": "up", "weight": 10, "evidence": "Quote for 10 seats."}],
            "risk_flags": [],
            "next_action": "Call.",
            "confidence": {"score": 0.9, "factors": 0.9, "risk_flags": 0.9, "next_action": 0.9},
        }
    return {
        "category": "Payments",
        "queue": "billing",
        "priority": "High",
        "sentiment": "negative",
        "language": "en",
        "escalate": False,
        "escalation_reason": None,
        "confidence": {"category": 0.9, "priority": 0.9, "sentiment": 0.9, "language": 0.9},
        "rationale": "card declined",
    }


@dataclass
class Run:
    logs: dict[str, str]
    database_url: str
    password: str
    facts: int


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _wait(
    what: str,
    check: Callable[[], bool],
    procs: dict[str, subprocess.Popen[bytes]],
    logs: Path,
    timeout: float = 120,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with "
                    f"{proc.returncode}:\n{(logs / f'{name}.log').read_text(errors='replace')[-3000:]}"
                )
        if check():
            return
        time.sleep(0.3)
    tails = "\n".join(f"--- {p.stem}\n{p.read_text(errors='replace')[-1500:]}" for p in logs.glob("*.log"))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    bootstrap = os.environ.get("CRMPILOT_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    base_url = os.environ.get(
        "CRMPILOT_DATABASE_URL",
        "postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot",
    )
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=5)
        with psycopg.connect(base_url, connect_timeout=3, autocommit=True) as conn:
            db = f"crmpilot_logscan_{uuid.uuid4().hex[:10]}"
            conn.execute(f'create database "{db}"')
    except Exception as exc:  # noqa: BLE001 - no stack: skip (a failure under CRMPILOT_TEST_REQUIRE_STACK=1)
        pytest.skip(f"the local stack is not running ({exc}); start it with `infra/stack.sh up`")
    params = conninfo_to_dict(base_url)
    params["dbname"] = db
    database_url = make_conninfo("", **params)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    run_id = uuid.uuid4().hex[:8]
    names = {
        n: f"logscan.{run_id}.{n}"
        for n in (
            "crm.case.events",
            "crm.email.events",
            "erp.request.events",
            "ai.ticket.classified",
            "ai.email.summarized",
            "ai.request.scored",
        )
    }
    topics = [t for n in names.values() for t in (n, n + ".dlq")]
    for f in admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in topics]).values():
        f.result(30)
    results = [
        names["ai.ticket.classified"],
        names["ai.email.summarized"],
        names["ai.request.scored"],
    ]
    sources = [
        names["crm.case.events"],
        names["crm.email.events"],
        names["erp.request.events"],
    ]
    tmp = tmp_path_factory.mktemp("logscan")
    port = free_port()
    server = OpenAITestServer(_answer).start()
    server.enqueue(
        rate_limited(0.2),
        rate_limited(0.2),
        server_error(500),
        server_error(503),
        invalid_json(),
        invalid_json(),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMPILOT_", "OPENAI_"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "CRMPILOT_KAFKA_BOOTSTRAP": bootstrap,
            "CRMPILOT_DATABASE_URL": database_url,
            "CRMPILOT_SANDBOX_PORT": str(port),
            "CRMPILOT_SANDBOX_CERT_DIR": str(tmp / "tls"),
            "CRMPILOT_SANDBOX_SESSION_TOKEN": PLANTED_SESSION,
            "CRMPILOT_SALESFORCE_INSTANCE_URL": f"https://127.0.0.1:{port}",
            "CRMPILOT_SALESFORCE_SESSION_ID": PLANTED_SESSION,
            "CRMPILOT_SALESFORCE_CA_BUNDLE": str(tmp / "tls" / "ca.pem"),
            "CRMPILOT_LLM_PROVIDER": "openai",
            "CRMPILOT_LLM_BASE_URL": server.base_url,
            "CRMPILOT_LLM_API_KEY": PLANTED_KEY,
            "CRMPILOT_TICKET_CLASSIFIER_INPUT_TOPIC": sources[0],
            "CRMPILOT_TICKET_CLASSIFIER_OUTPUT_TOPIC": results[0],
            "CRMPILOT_EMAIL_SUMMARIZER_INPUT_TOPIC": sources[1],
            "CRMPILOT_EMAIL_SUMMARIZER_OUTPUT_TOPIC": results[1],
            "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([sources[2]]),
            "CRMPILOT_ENRICHER_OUTPUT_TOPIC": results[2],
            "CRMPILOT_WAREHOUSE_WRITER_TOPICS": json.dumps(results + sources),
            "CRMPILOT_CRM_WRITER_TOPICS": json.dumps(results),
            "CRMPILOT_CRM_WRITER_LIMIT_PAUSE_S": "1",
            "CRMPILOT_CRM_WRITER_BACKOFF_MAX_S": "2",
        }
    )
    for svc in CONSUMERS:
        prefix = f"CRMPILOT_{svc.upper()}_"
        env[prefix + "GROUP_ID"] = f"logscan-{run_id}-{svc}"
        env[prefix + "LOG_LEVEL"] = "DEBUG"
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def launch(name: str, *args: str) -> None:
        with (tmp / f"{name}.log").open("wb") as out:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", name, *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def logged(name: str, text: str) -> bool:
        return text in (tmp / f"{name}.log").read_text(errors="replace")

    try:
        launch("crm_sandbox", "--log-level", "debug")
        _wait("the sandbox", lambda: logged("crm_sandbox", "listening on"), procs, tmp)
        for name in CONSUMERS:
            launch(name, *ARGS.get(name, ()))
        for name in CONSUMERS:
            _wait(
                f"{name} to consume",
                partial(logged, name, "consuming"),
                procs,
                tmp,
            )
        case_ids = _create_cases(f"https://127.0.0.1:{port}", tmp / "tls" / "ca.pem", 2 * N)
        requests.post(
            f"https://127.0.0.1:{port}/__sandbox/faults",
            json={"limit_exceeded": True},
            verify=str(tmp / "tls" / "ca.pem"),
            timeout=10,
        )
        _produce(bootstrap, sources, case_ids)
        time.sleep(2)
        requests.post(
            f"https://127.0.0.1:{port}/__sandbox/faults",
            json={"limit_exceeded": False},
            verify=str(tmp / "tls" / "ca.pem"),
            timeout=10,
        )

        def facts() -> int:
            with psycopg.connect(database_url) as conn:
                return sum(
                    _count(conn, f"select count(*) from warehouse.{t}")
                    for t in ("fact_ticket_classification", "fact_email_summary")
                ) + _count(conn, "select count(*) from warehouse.fact_enrichment where task = 'score_request'")

        def applied() -> int:
            with psycopg.connect(database_url) as conn:
                return _count(
                    conn, "select count(distinct result_id) from warehouse.crm_write_audit where status = 'applied'"
                )

        # quotes target no CRM record: cases and emails are applied
        _wait(
            "every result in the warehouse and the CRM",
            lambda: facts() == 3 * N and applied() == 2 * N,
            procs,
            tmp,
            timeout=150,
        )
        for proc in procs.values():  # graceful stop: the shutdown path logs too
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(40)
        yield Run(
            {p.stem: p.read_text(errors="replace") for p in tmp.glob("*.log")},
            database_url,
            str(params.get("password", "")),
            facts(),
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        server.stop()
        admin.delete_topics(topics, operation_timeout=30)
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{db}" with (force)')


def _create_cases(url: str, ca: Path, n: int) -> list[str]:
    from crm_sandbox.client import sandbox_salesforce

    sf = sandbox_salesforce(url, ca, "sandbox-human-token")
    records = [
        {
            "attributes": {"type": "Case"},
            "Subject": f"Card declined {i}",
            "Description": "My card was declined twice.",
            "Status": "New",
        }
        for i in range(n)
    ]
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": records},
    )
    assert results is not None
    return [r["id"] for r in results]


def _produce(bootstrap: str, sources: list[str], case_ids: list[str]) -> None:
    now = datetime.now(UTC)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(N):
        case = Envelope[CaseEvent](
            source="crm://logscan",
            type="crm.case.created",
            schemaversion=1,
            subject=case_ids[i],
            time=now,
            data=CaseEvent(
                case_id=case_ids[i], subject=f"Card declined {i}", description="My card was declined twice."
            ),
        )
        email = Envelope[EmailReceived](
            source="crm://logscan",
            type="crm.email.received",
            schemaversion=1,
            subject=case_ids[N + i],
            time=now,
            data=EmailReceived(
                email_id=f"em-{i}",
                case_id=case_ids[N + i],
                from_address="maria@example.com",
                subject="Order",
                body="Where is my order? Please check.",
                received_at=now,
            ),
        )
        request = Envelope[RequestSubmitted](
            source="erp://logscan",
            type="erp.request.submitted",
            schemaversion=1,
            subject=f"REQ-{i}",
            time=now,
            data=RequestSubmitted(
                request_id=f"REQ-{i}",
                kind="quote",
                company="Northwind",
                amount=Decimal(100),
                currency="EUR",
                description="Quote for 10 seats.",
            ),
        )
        envelopes: tuple[Envelope[Any], ...] = (case, email, request)
        for topic, env in zip(sources, envelopes, strict=True):
            producer.produce(topic, encode(env), env.subject.encode())
    for topic in sources:
        producer.produce(topic, b"{not json", b"poison")
    assert producer.flush(30) == 0


@pytest.mark.parametrize("service", CONSUMERS)
def test_no_service_log_holds_a_planted_secret(run: Run, service: str) -> None:
    log = run.logs[service]
    assert log, f"{service} logged nothing"
    assert '"level": "debug"' in log, "the services ran at DEBUG"
    password = run.password
    assert PLANTED_KEY not in log, "the OpenAI API key"
    assert PLANTED_SESSION not in log, "the Salesforce session"
    assert f":{password}@" not in log and f"password={password}" not in log, "the database password"
    assert run.database_url not in log


def test_the_sandbox_log_holds_neither_the_api_key_nor_the_database_password(
    run: Run,
) -> None:
    log = run.logs["crm_sandbox"]
    assert PLANTED_KEY not in log
    assert f":{run.password}@" not in log and run.database_url not in log


def test_the_run_exercised_the_error_paths(run: Run) -> None:
    """The search means something only if the services logged retries, limits and dead letters."""
    everything = "\n".join(run.logs.values())
    assert run.facts == 3 * N
    assert "dead-lettered" in everything
    assert "429" in everything or "rate" in everything.lower()
    assert "REQUEST_LIMIT_EXCEEDED" in everything or "limit" in everything.lower()
