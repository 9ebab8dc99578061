"""crm_source polls the Opportunity for churn_risk: the CRM sandbox (serving the example specs), the watermark in
PostgreSQL, Kafka.

A person's new Opportunity becomes one ``crm.record.created`` event on the spec's
first source topic, keyed by the record id; crmpilot writing ``Churn_Risk__c`` back
as the integration user produces nothing on the next poll; a person's later edit
of the description is an update that names it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from crm_kit import adapter, human
from sandbox_support import Sandbox

from crm_source.handler import CRMSource, PollStats
from crmpilot.crm.changes import record_sources
from crmpilot.crm.port import RecordRef, RecordUpdate
from crmpilot.crm.watermark import PostgresWatermarkStore
from crmpilot.enrichments.registry import LOCK_FILE, load_registry
from crmpilot.events import RecordChanged, decode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import EventProducer
from crmpilot.warehouse import PostgresWarehouse
from tests.sfkit import sobject

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
SOURCE = "crm://sandbox-enrichment-test"
DESCRIPTION = "Renewal due in March. The customer complained twice about outages and is evaluating a competitor."


@pytest.fixture(scope="module", autouse=True)
def _sandbox_serves_the_examples() -> Iterator[None]:
    """Set before this module's sandbox (module scope) starts, so it serves Opportunity.Churn_Risk__c and the
    markers."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
        yield


def _poll(source: CRMSource) -> PollStats:
    return asyncio.run(source.poll_once())["record:Opportunity"]


def _read(bootstrap: str, topic: str, *, expect: int, timeout: float = 30) -> list[Any]:
    """Every record of ``topic`` from the beginning: at least ``expect`` (or what came within ``timeout``), plus a
    second's worth more."""
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


def test_an_opportunity_becomes_a_record_event_and_our_churn_write_back_none(
    sb: Sandbox,
    watermarks: PostgresWatermarkStore,
    warehouse: PostgresWarehouse,
    kafka_settings: KafkaSettings,
    unique_topic: Any,
    tmp_path: Path,
) -> None:
    topic = unique_topic("crm-source-opportunity", partitions=3)
    spec = (EXAMPLES / "churn_risk.yaml").read_text().replace("topics: [crm.opportunity.events]", f"topics: [{topic}]")
    (tmp_path / "churn_risk.yaml").write_text(spec)
    shutil.copy(EXAMPLES / LOCK_FILE, tmp_path / LOCK_FILE)
    [opportunity] = record_sources(load_registry([tmp_path])).objects
    assert (opportunity.sobject, opportunity.topics) == ("Opportunity", (topic,))

    producer = EventProducer(kafka_settings, client_id="crm-source-enrichment-test")
    source = CRMSource(
        crm=adapter(sb),
        store=watermarks,
        feedback=warehouse,
        sink=producer,
        topics={"case": "unused", "email": "unused", "lead": "unused"},
        objects=[opportunity],
        source=SOURCE,
        overlap=timedelta(seconds=30),
        page_size=None,
    )
    try:
        created = sobject(human(sb), "Opportunity").create(
            {
                "Name": "Acme renewal 2027",
                "StageName": "Negotiation/Review",
                "CloseDate": "2027-03-31",
                "Description": DESCRIPTION,
            }
        )
        record_id = created["id"]
        stats = _poll(source)
        assert (stats.read, stats.emitted) == (1, 1)

        [message] = _read(kafka_settings.bootstrap, topic, expect=1)
        assert message.key().decode() == record_id
        event = decode(message.value())
        assert (event.type, event.subject, event.source) == ("crm.record.created", record_id, SOURCE)
        assert isinstance(event.data, RecordChanged)
        assert (event.data.sobject, event.data.record_id, event.data.changed_fields) == ("Opportunity", record_id, ())
        assert event.data.fields == {"Name": "Acme renewal 2027", "Description": DESCRIPTION}
        assert event.data.last_modified == event.time

        # crm_writer's write-back, as the integration user: the spec's own fields only
        [outcome] = adapter(sb).update(
            [
                RecordUpdate(
                    RecordRef("Opportunity", record_id),
                    {
                        "Churn_Risk__c": "high",
                        "AI_Churn_Result_Id__c": "r-churn-1",
                        "AI_Churn_Review_Required__c": False,
                    },
                )
            ]
        )
        assert outcome.ok, outcome
        stats = _poll(source)
        assert (stats.read, stats.own_writes, stats.emitted) == (1, 1, 0)
        assert len(_read(kafka_settings.bootstrap, topic, expect=2, timeout=3)) == 1, "no event for our own write-back"

        sobject(human(sb), "Opportunity").update(
            record_id, {"Description": DESCRIPTION + " They asked for the cancellation terms."}
        )
        stats = _poll(source)
        assert stats.emitted == 1
        first, update = sorted(_read(kafka_settings.bootstrap, topic, expect=2), key=lambda m: decode(m.value()).time)
        update_event = decode(update.value())
        assert (update_event.type, update.key().decode()) == ("crm.record.updated", record_id)
        assert update_event.data.changed_fields == ("Description",)
        assert update_event.id != decode(first.value()).id
    finally:
        asyncio.run(producer.aclose())

    saved = watermarks.load(SOURCE, "record:Opportunity")
    assert saved is not None
    assert watermarks.seen(SOURCE, "record:Opportunity", [record_id])[record_id].modstamp <= saved.at
