"""One case event all the way through: Kafka → classifier → result topic → CRM field + warehouse row.

Runs the real services as processes against the real broker, PostgreSQL and
the CRM sandbox (driven through simple-salesforce), and checks what a user
would look at: the CRM fields, the warehouse rows with provenance, the
dead-letter topic, the committed offsets, and that a person's edit and a
redelivery are both respected.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from e2e_stack import Pipeline, committed_equals_end, read_all, wait_for

from crm_sandbox.client import sandbox_salesforce
from crmpilot.crm.source import case_events, fetch_case_records
from crmpilot.events import CaseEvent, Envelope, result_id_for
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import produce_events
from crmpilot.tasks import CLASSIFY_TICKET
from tests.sfkit import sobject

pytestmark = pytest.mark.e2e

HUMAN_TOKEN = "sandbox-human-token"
BOT_TOKEN = "sandbox-integration-token"
N_CASES = 8


def facts(pipeline: Pipeline, result_ids: list[str]) -> list[dict[str, Any]]:
    with psycopg.connect(pipeline.database_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("select * from warehouse.fact_ticket_classification where result_id = any(%s)", (result_ids,))
        return cur.fetchall()


@pytest.fixture(scope="module")
def sent(pipeline: Pipeline) -> dict[str, Any]:
    """Send N case events (one of them edited by a person first) and two poison records."""
    bot = sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, BOT_TOKEN)
    records = fetch_case_records(bot)[:N_CASES]
    assert len(records) == N_CASES, "the sandbox demo seed has too few cases"
    events = case_events(records, source="crm://e2e")
    # The event is about the record as it was; a person then edits it before crmpilot answers.
    human_case = events[0].subject
    sobject(sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, HUMAN_TOKEN), "Case").update(
        human_case, {"Status": "Working"}
    )
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    produce_events(pipeline.case_topic, events, kafka=kafka)
    producer = Producer(kafka.librdkafka())
    producer.produce(pipeline.case_topic, key=b"bad-json", value=b"{not json")
    producer.produce(
        pipeline.case_topic,
        key=b"bad-version",
        value=json.dumps({"type": "crm.case.created", "schemaversion": 42, "data": {}}).encode(),
    )
    assert producer.flush(30) == 0
    result_ids = {result_id_for(e.id, CLASSIFY_TICKET.name, CLASSIFY_TICKET.prompt.version): e for e in events}
    wait_for("a warehouse fact for every case", lambda: len(facts(pipeline, list(result_ids))) == N_CASES, pipeline)
    wait_for(
        "the CRM writer to finish every result",
        lambda: committed_equals_end(pipeline, pipeline.groups["crm_writer"], pipeline.result_topic),
        pipeline,
    )
    return {"events": events, "result_ids": result_ids, "human_case": human_case, "bot": bot, "kafka": kafka}


def test_every_case_has_one_fact_with_full_provenance(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    rows = facts(pipeline, list(sent["result_ids"]))
    assert len(rows) == N_CASES
    for row in rows:
        event: Envelope[CaseEvent] = sent["result_ids"][row["result_id"]]
        assert row["case_id"] == event.subject
        assert row["provider"] == "local"
        assert row["prompt_version"] == CLASSIFY_TICKET.prompt.version
        assert row["source_topic"] == pipeline.case_topic
        assert row["source_event_id"] == event.id
        assert row["source_offset"] >= 0 and row["source_partition"] in (0, 1, 2)
        assert len(row["input_hash"]) == 32 and len(row["trace_id"]) == 32
        assert row["tokens_in"] > 0
        assert row["category"] in {c.name for c in CLASSIFY_TICKET.output_model.taxonomy}


def test_crm_fields_match_the_warehouse_and_a_persons_edit_wins(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    rows = {r["case_id"]: r for r in facts(pipeline, list(sent["result_ids"]))}
    bot = sent["bot"]
    for case_id, row in rows.items():
        record = bot.Case.get(case_id)
        assert row["review_decision"] != "skip"
        if case_id == sent["human_case"]:
            assert record["AI_Result_Id__c"] is None, f"{case_id} must not be written"
            continue
        assert record["AI_Result_Id__c"] == row["result_id"]
        assert record["AI_Category__c"] == row["category"]
        assert record["AI_Priority__c"] == row["priority"]
        assert record["AI_Review_Required__c"] is (row["review_decision"] != "auto_apply")
        assert record["AI_Trace_Id__c"] == row["trace_id"]
    with psycopg.connect(pipeline.database_url) as conn:
        statuses: dict[str, str] = dict(
            conn.execute(
                "select record_id, string_agg(distinct status, ',') from warehouse.crm_write_audit where result_id "
                "= any(%s) group by record_id",
                (list(sent["result_ids"]),),
            ).fetchall()
        )
    assert statuses[sent["human_case"]] == "skipped_human_edit"
    assert len(statuses) == N_CASES


def test_bad_records_are_dead_lettered_with_the_reason_and_the_consumer_moves_on(
    pipeline: Pipeline, sent: dict[str, Any]
) -> None:
    dlq = read_all(pipeline, pipeline.case_topic + ".dlq")
    by_group: dict[tuple[bytes, str], dict[str, bytes]] = {}
    for msg in dlq:
        headers = dict(msg.headers() or [])
        by_group[(msg.key(), headers["crmpilot.consumer.group"].decode())] = headers
    classifier = pipeline.groups["ticket_classifier"]
    bad_json = by_group[(b"bad-json", classifier)]
    assert bad_json["crmpilot.error.class"].endswith(b"InvalidJSON")
    assert b"not JSON" in bad_json["crmpilot.error.message"]
    assert bad_json["crmpilot.source.topic"].decode() == pipeline.case_topic
    bad_version = by_group[(b"bad-version", classifier)]
    assert bad_version["crmpilot.error.class"].endswith(b"UnknownSchemaVersion")
    wait_for(
        "the classifier to commit past the poison",
        lambda: committed_equals_end(pipeline, classifier, pipeline.case_topic),
        pipeline,
    )


def test_redelivered_events_change_nothing(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    bot = sent["bot"]
    before = {cid: bot.Case.get(cid)["LastModifiedDate"] for cid in {e.subject for e in sent["events"]}}
    applied = "select count(*) from warehouse.crm_write_audit where status = 'applied' and result_id = any(%s)"
    with psycopg.connect(pipeline.database_url) as conn:
        row = conn.execute(applied, (list(sent["result_ids"]),)).fetchone()
        assert row is not None
        audit_before = row[0]
    produce_events(pipeline.case_topic, sent["events"], kafka=sent["kafka"])
    for group, topic in (("ticket_classifier", pipeline.case_topic), ("crm_writer", pipeline.result_topic)):
        wait_for(
            f"{group} to handle the redelivery",
            partial(committed_equals_end, pipeline, pipeline.groups[group], topic),
            pipeline,
        )
    assert len(facts(pipeline, list(sent["result_ids"]))) == N_CASES
    after = {cid: bot.Case.get(cid)["LastModifiedDate"] for cid in before}
    assert after == before, "a redelivered result must not write the CRM again"
    with psycopg.connect(pipeline.database_url) as conn:
        row = conn.execute(applied, (list(sent["result_ids"]),)).fetchone()
        assert row is not None
        assert row[0] == audit_before


def test_results_carry_the_source_trace(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    results = read_all(pipeline, pipeline.result_topic)
    assert results, "no result records"
    for msg in results:
        traceparent = dict(msg.headers() or [])["traceparent"].decode()
        payload = json.loads(msg.value())
        assert traceparent.split("-")[1] == payload["data"]["provenance"]["trace_id"]
