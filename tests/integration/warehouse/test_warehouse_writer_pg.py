"""PostgresWarehouse against a real PostgreSQL: idempotent batches with full provenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from warehouse_samples import DAY1, make_email, make_request, make_ticket

from crmpilot.events import CaseEvent, Envelope
from crmpilot.warehouse import CrmAuditEntry, DlqEntry, FeedbackEntry, KafkaPosition, PostgresWarehouse

pytestmark = pytest.mark.integration

FACT_TABLES = ["fact_ticket_classification", "fact_email_summary", "fact_enrichment"]  # score_request: enrichment


def _position(i: int, topic: str = "ai.ticket.classified") -> KafkaPosition:
    return KafkaPosition(topic, i % 3, 1000 + i)


def _count(db: psycopg.Connection, table: str) -> int:
    row = db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("warehouse", table))).fetchone()
    assert row is not None
    return int(row[0])


def test_results_written_twice_are_stored_once_with_every_column_filled(
    warehouse: PostgresWarehouse, db: psycopg.Connection
) -> None:
    batch: list[tuple[Envelope[Any], KafkaPosition]] = [
        (make_ticket("evt-1"), _position(1)),
        (make_email("evt-2"), _position(2)),
        (make_request("evt-3"), _position(3, "ai.request.scored")),
    ]
    assert warehouse.write_results(batch) == 3
    assert warehouse.write_results(batch) == 0
    assert warehouse.write_results(batch[:1] * 3) == 0  # duplicates inside one batch too
    # the request's score is the built-in score_request enrichment's row
    assert db.execute(
        "select task, record_id, outputs->'score', outputs->>'band', outputs->>'reasons', result_topic"
        " from warehouse.fact_enrichment"
    ).fetchall() == [("score_request", "req-evt-3", 64, "warm", "+ budget stated; risk: free_mail_domain",
                      "ai.request.scored")]  # fmt: skip
    for table in FACT_TABLES:
        assert _count(db, table) == 1
        columns = [r[0] for r in db.execute(
            "select column_name from information_schema.columns where table_schema = 'warehouse' and table_name = %s"
            " and column_name not in ('redacted', 'redacted_at')",  # set only by `crmpilot erase` / `db purge`
            (table,),
        )]  # fmt: skip
        nulls = sql.SQL(", ").join(sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in columns)
        row = db.execute(sql.SQL("select {} from {}").format(nulls, sql.Identifier("warehouse", table))).fetchone()
        assert row is not None
        empty = [c for c, n in zip(columns, row, strict=True) if n]
        assert empty == [], f"{table} has NULL in {empty}"


def test_a_fact_row_keeps_its_provenance_and_joins_its_raw_event_and_offset(
    warehouse: PostgresWarehouse, db: psycopg.Connection
) -> None:
    source = Envelope[CaseEvent](
        id="evt-7", source="crm://salesforce/org-1", type="crm.case.created", schemaversion=1, time=DAY1,
        subject="case-evt-7", data=CaseEvent(case_id="case-evt-7", subject="Charged twice"),
    )  # fmt: skip
    result = make_ticket("evt-7", source_offset=41, source_partition=2, cost_usd="0.000123", cache_hit=True)
    assert warehouse.write_raw_events([(source, KafkaPosition("crm.case.events", 2, 41))]) == 1
    assert warehouse.write_raw_events([(source, KafkaPosition("crm.case.events", 2, 41))]) == 0
    warehouse.write_results([(result, KafkaPosition("ai.ticket.classified", 0, 77))])
    row = db.execute(
        """select f.category, f.cost_usd::text, f.cache_hit, f.prompt_hash, f.result_offset, r.type,
                  r.payload->>'subject', f.result->'provenance'->>'trace_id' = f.trace_id
             from warehouse.fact_ticket_classification f
             join warehouse.raw_events r
               on r.event_id = f.source_event_id
              and (r.topic, r.kafka_partition, r.kafka_offset)
                  = (f.source_topic, f.source_partition, f.source_offset)"""
    ).fetchall()
    assert row == [("Billing", "0.000123", True, "a1b2c3d4e5f60718", 77, "crm.case.created", "Charged twice", True)]


def test_large_batches_span_several_statements(warehouse: PostgresWarehouse, db: psycopg.Connection) -> None:
    batch = [(make_ticket(f"evt-{i}"), _position(i)) for i in range(1_200)]
    assert warehouse.write_results(batch) == 1_200
    assert warehouse.write_results(batch) == 0
    assert _count(db, "fact_ticket_classification") == 1_200


def test_text_with_nul_characters_is_stored(warehouse: PostgresWarehouse, db: psycopg.Connection) -> None:
    source = Envelope[CaseEvent](
        id="evt-nul", source="crm://x", type="crm.case.created", schemaversion=1, subject="c1",
        data=CaseEvent(case_id="c1", description="before\x00after"),
    )  # fmt: skip
    assert warehouse.write_raw_events([(source, KafkaPosition("crm.case.events", 0, 1))]) == 1
    assert db.execute("select payload->>'description' from warehouse.raw_events").fetchone() == ("before\ufffdafter",)


def test_crm_audit_is_recorded_queried_and_reverted(warehouse: PostgresWarehouse) -> None:
    t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
    entries = [
        CrmAuditEntry(
            "r1",
            "Case",
            "500A1",
            "AI_Category__c",
            "Other",
            "Billing",
            "applied",
            trace_id="t1",
            run_id="run-a",
            applied_at=t0,
        ),
        CrmAuditEntry("r1", "Case", "500A1", "AI_Priority__c", None, "High", "applied", run_id="run-a", applied_at=t0),
        CrmAuditEntry(
            "r2",
            "Case",
            "500A2",
            "AI_Category__c",
            "Refund",
            "Billing",
            "skipped_human_edit",
            reason="edited by 005A1 after the event",
            applied_at=t0,
        ),
        CrmAuditEntry(
            "r3",
            "Case",
            "500A3",
            "AI_Category__c",
            None,
            "Refund",
            "applied",
            run_id="run-b",
            applied_at=t0 + timedelta(hours=2),
        ),
    ]
    assert warehouse.record_crm_audit(entries) == 4
    assert [(e.result_id, e.field) for e in warehouse.crm_audit(run_id="run-a")] == [
        ("r1", "AI_Category__c"), ("r1", "AI_Priority__c"),
    ]  # fmt: skip
    assert [e.result_id for e in warehouse.crm_audit(since=t0 + timedelta(hours=1))] == ["r3"]
    assert [e.result_id for e in warehouse.crm_audit(result_ids=["r2"], statuses=("skipped_human_edit",))] == ["r2"]
    first = warehouse.crm_audit(run_id="run-a")[0]
    assert first.id is not None and first.before_value == "Other" and first.trace_id == "t1" and first.applied_at == t0
    assert warehouse.mark_reverted([first.id]) == 1
    assert warehouse.mark_reverted([first.id]) == 0
    assert warehouse.mark_reverted([]) == 0 and warehouse.crm_audit(result_ids=[]) == []
    reverted = warehouse.crm_audit(statuses=("reverted",))
    assert [e.id for e in reverted] == [first.id] and reverted[0].reverted_at is not None


def test_dlq_and_feedback_are_idempotent(warehouse: PostgresWarehouse, db: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    dead = DlqEntry("ticket_classifier", "crm.case.events", 0, 12, "InvalidJSON", "invalid_json", "not JSON", 1, now,
                    key="500A1", dlq_topic="crm.case.events.dlq")  # fmt: skip
    assert warehouse.record_dlq([dead, dead]) == 1
    assert warehouse.record_dlq([dead]) == 0
    other_group = DlqEntry("crm_writer", "crm.case.events", 0, 12, "CRMError", "picklist", "bad value", 3, now)
    assert warehouse.record_dlq([other_group]) == 1
    fb = FeedbackEntry(
        "fb-1", "Case", "500A1", "AI_Category__c", "Billing", "Refund", now, changed_by="005A1", result_id="r1"
    )
    assert warehouse.record_feedback([fb, fb]) == 1
    assert _count(db, "dlq_log") == 2 and _count(db, "feedback") == 1


def test_check_passes_on_a_migrated_database(warehouse: PostgresWarehouse) -> None:
    warehouse.check()
