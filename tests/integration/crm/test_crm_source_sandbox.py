"""crm_source against the CRM sandbox, its watermark in PostgreSQL, and (as a process) Kafka.

One event per change, paged through ``nextRecordsUrl``; nothing for crmpilot's
own write-backs; a restart resumes from the stored watermark without gaps or
duplicates; a person overriding an AI field becomes a feedback row; the
service polls, produces to Kafka and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from crm_kit import adapter, classification, create_cases, human
from sandbox_support import Sandbox

from crm_sandbox.org import AGENT_USER
from crm_source.handler import CRMSource, PollStats
from crmpilot.crm import write_back
from crmpilot.crm.changes import SOURCE_OBJECTS
from crmpilot.crm.watermark import PostgresWatermarkStore
from crmpilot.crm.writeback import AuditLog
from crmpilot.events import Envelope, decode
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse, connect
from tests.sfkit import sobject

pytestmark = pytest.mark.integration

SOURCE = "crm://sandbox-test"


class Sink:
    def __init__(self) -> None:
        self.sent: list[Envelope[Any]] = []

    async def send_many(self, topic: str, envelopes: Iterable[Envelope[Any]]) -> Sequence[object]:
        batch = list(envelopes)
        self.sent += batch
        return batch


def _source(
    sb: Sandbox, store: PostgresWatermarkStore, warehouse: PostgresWarehouse, sink: Sink, *objects: str
) -> CRMSource:
    """A fresh source (as after a restart): only the store carries its position."""
    return CRMSource(
        crm=adapter(sb),
        store=store,
        feedback=warehouse,
        sink=sink,
        topics={"case": "crm.case.events", "email": "crm.email.events", "lead": "crm.lead.events"},
        objects=[SOURCE_OBJECTS[o] for o in objects or ("Case",)],
        source=SOURCE,
        overlap=timedelta(seconds=30),
        page_size=None,  # the sandbox's page of 5: polls page through nextRecordsUrl
    )


def _poll(source: CRMSource) -> dict[str, PollStats]:
    return asyncio.run(source.poll_once())


def test_one_event_per_change_in_pages_and_none_twice(
    sb: Sandbox, watermarks: PostgresWatermarkStore, warehouse: PostgresWarehouse
) -> None:
    sink = Sink()
    cases = create_cases(sb, 12)
    stats = _poll(_source(sb, watermarks, warehouse, sink))
    assert stats["Case"].pages >= 3
    assert sorted(e.subject for e in sink.sent) == sorted(cases)
    assert {e.type for e in sink.sent} == {"crm.case.created"}

    sobject(human(sb), "Case").update(cases[3], {"Description": "It happened again this morning"})
    stats = _poll(_source(sb, watermarks, warehouse, sink))
    [update] = sink.sent[12:]
    assert (update.type, update.subject, update.data.changed_fields) == ("crm.case.updated", cases[3], ("Description",))
    assert update.data.description == "It happened again this morning"
    assert stats["Case"].duplicates >= 1, "records inside the overlap window are re-read and dropped"


def test_our_own_write_back_triggers_no_new_event(
    sb: Sandbox, watermarks: PostgresWatermarkStore, warehouse: PostgresWarehouse
) -> None:
    sink = Sink()
    [case] = create_cases(sb, 1)
    _poll(_source(sb, watermarks, warehouse, sink))
    # cast: AuditLog.crm_audit takes statuses: Sequence[str], the warehouse's Sequence[AuditStatus] (narrower)
    assert write_back([classification(case)], adapter(sb), cast(AuditLog, warehouse))[0].status == "applied"

    stats = _poll(_source(sb, watermarks, warehouse, sink))
    assert len(sink.sent) == 1
    assert stats["Case"].own_writes == 1
    assert sb.changes()[-1]["payload"]["ChangeEventHeader"]["changeOrigin"].endswith("client=crmpilot")


def test_a_restart_resumes_from_the_watermark_without_gaps_or_duplicates(
    sb: Sandbox, watermarks: PostgresWatermarkStore, warehouse: PostgresWarehouse, crm_db: DatabaseSettings
) -> None:
    sink = Sink()
    first = create_cases(sb, 7)
    _poll(_source(sb, watermarks, warehouse, sink))
    with connect(crm_db) as conn:
        [(saved,)] = conn.execute(
            "select watermark from warehouse.crm_source_watermark where source = %s", (SOURCE,)
        ).fetchall()
    assert saved is not None

    later = create_cases(sb, 4)
    sobject(human(sb), "Case").update(first[0], {"Status": "Working"})
    restarted = PostgresWatermarkStore.connect(crm_db)
    try:
        _poll(_source(sb, restarted, warehouse, sink))
    finally:
        restarted.close()

    subjects = [e.subject for e in sink.sent]
    assert sorted(subjects) == sorted([*first, *later, first[0]]), "every change once, nothing missed"
    assert len(set(e.id for e in sink.sent)) == len(sink.sent)
    assert sink.sent[-1].type == "crm.case.updated" and sink.sent[-1].data.changed_fields == ("Status",)


def test_a_person_overriding_the_ai_category_is_recorded_as_feedback(
    sb: Sandbox, watermarks: PostgresWatermarkStore, warehouse: PostgresWarehouse, crm_db: DatabaseSettings
) -> None:
    sink = Sink()
    [case] = create_cases(sb, 1)
    result = classification(case, category="Payments")
    write_back([result], adapter(sb), cast(AuditLog, warehouse))
    _poll(_source(sb, watermarks, warehouse, sink))

    sobject(human(sb), "Case").update(case, {"AI_Category__c": "Refund"})
    stats = _poll(_source(sb, watermarks, warehouse, sink))
    assert stats["Case"].feedback == 1
    with connect(crm_db) as conn:
        rows = conn.execute(
            "select field, ai_value, human_value, changed_by, result_id from warehouse.feedback"
        ).fetchall()
    assert rows == [("AI_Category__c", "Payments", "Refund", AGENT_USER.id, result.result_id)]
    assert sink.sent[-1].data.changed_fields == ("AI_Category__c",)

    sobject(human(sb), "Case").update(case, {"Status": "Working"})
    assert _poll(_source(sb, watermarks, warehouse, sink))["Case"].feedback == 0, "the same override is recorded once"


def test_the_service_polls_produces_and_stops_on_sigterm(
    sb: Sandbox,
    warehouse: PostgresWarehouse,
    crm_db: DatabaseSettings,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
) -> None:
    topic = unique_topic("crm-source-cases", partitions=3)
    env = {
        **os.environ,
        "CRMPILOT_SALESFORCE_INSTANCE_URL": sb.url,
        "CRMPILOT_SALESFORCE_CA_BUNDLE": str(sb.ca),
        "CRMPILOT_DATABASE_URL": crm_db.url.get_secret_value(),
        "CRMPILOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CRMPILOT_CRM_SOURCE_OBJECTS": '["Case"]',
        "CRMPILOT_CRM_SOURCE_CASE_TOPIC": topic,
        "CRMPILOT_CRM_SOURCE_POLL_INTERVAL_S": "0.5",
        "CRMPILOT_CRM_SOURCE_SOURCE": f"crm://service-test/{topic}",
    }
    cwd = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_source"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    try:
        _wait_for_line(proc, log, "polling", timeout=30)
        cases = create_cases(sb, 3)
        records = _read(kafka_bootstrap, topic, expect=3, timeout=30)
        assert sorted(m.key().decode() for m in records) == sorted(cases), "keyed by case id"
        assert {decode(m.value()).type for m in records} == {"crm.case.created"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = proc.stdout.read() if proc.stdout else ""
    assert "stopped after" in "".join(log) + rest


def _wait_for_line(proc: subprocess.Popen[str], log: list[str], needle: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"crm_source exited ({proc.poll()}):\n{''.join(log)}")
        log.append(line)
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} line within {timeout}s:\n{''.join(log)}")


def _read(bootstrap: str, topic: str, *, expect: int, timeout: float) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            out += [m for m in consumer.consume(100, 0.2) if m.error() is None]
        out += [m for m in consumer.consume(100, 1.0) if m.error() is None]
        return out
    finally:
        consumer.close()
