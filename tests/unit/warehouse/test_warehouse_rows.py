"""How events and records map to warehouse rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from crmpilot.enrichments import load_registry
from crmpilot.enrichments.warehouse import builtin_views, view_columns, view_sql
from crmpilot.events import CaseEvent, EmailSummary, EnrichmentResult, Envelope, TicketClassification
from crmpilot.warehouse import CrmAuditEntry, DlqEntry, KafkaPosition
from crmpilot.warehouse.rows import audit_row, dlq_row, fact_row, raw_event_row, scrub

POSITION = KafkaPosition("ai.ticket.classified", 2, 1007)
PROVENANCE_COLUMNS = {
    "provider", "model", "model_version", "prompt_id", "prompt_version", "prompt_hash", "input_hash",
    "tokens_in", "tokens_out", "cost_usd", "latency_ms", "attempts", "cache_hit", "trace_id",
    "source_topic", "source_partition", "source_offset", "source_event_id", "event_time", "processed_at",
    "result_topic", "result_partition", "result_offset",
}  # fmt: skip


def test_ticket_classification_row_has_typed_columns_provenance_and_position(
    ticket: Callable[..., Envelope[TicketClassification]],
) -> None:
    envelope = ticket()
    table, row = fact_row(envelope, POSITION)
    assert table == "fact_ticket_classification"
    assert row["result_id"] == envelope.data.result_id
    assert row["result_event_id"] == envelope.id
    assert (row["category"], row["priority"], row["sentiment"], row["language"], row["queue"]) == (
        "Billing", "High", "negative", "en", "billing",
    )  # fmt: skip
    assert row["escalate"] is True and row["review_decision"] == "auto_apply"
    assert row["confidence"] == 0.81  # the lowest field
    assert row["confidence_by_field"] == {"category": 0.93, "priority": 0.81}
    assert row["cost_usd"] == Decimal("0.000036")
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == ("crm.case.events", 3, 41)
    assert (row["result_topic"], row["result_partition"], row["result_offset"]) == ("ai.ticket.classified", 2, 1007)
    assert PROVENANCE_COLUMNS <= row.keys()
    assert all(row[c] is not None for c in PROVENANCE_COLUMNS)
    assert row["result"] == envelope.data.model_dump(mode="json")


def test_email_summary_and_request_score_rows(
    email: Envelope[EmailSummary], request_score: Envelope[EnrichmentResult]
) -> None:
    table, row = fact_row(email, POSITION)
    assert table == "fact_email_summary"
    assert (row["intent"], row["urgency"], row["verified"], row["action_item_count"]) == (
        "refund_request",
        "high",
        True,
        0,
    )
    table, row = fact_row(request_score, POSITION)  # the built-in score_request: a row of fact_enrichment
    assert table == "fact_enrichment"
    assert (row["task"], row["record_id"], row["review_decision"]) == ("score_request", "00QA1", "skip")
    outputs = row["outputs"]
    assert (outputs["score"], outputs["band"], outputs["risk_flags"]) == (77, "hot", ["free_mail_domain"])
    assert outputs["factors"] == [
        {"name": "company size", "direction": "up", "weight": 6.0, "evidence": "employees: 240"}
    ]
    assert outputs["reasons"] == "+ company size; risk: free_mail_domain"
    assert row["confidence"] == 0.64 and row["confidence_by_field"]["score"] == 0.64
    assert (row["source_topic"], row["prompt_version"]) == ("erp.request.events", "2026-12-08.1")


def test_request_scores_are_read_in_the_bi_score_request_view_with_typed_columns() -> None:
    spec = load_registry([]).get("score_request")  # built in: every deployment has the view
    assert "score_request" not in builtin_views()  # no migration's view takes its name
    columns = dict(view_columns(spec))
    assert (columns["record_id"], columns["score"], columns["band"], columns["risk_flags"]) == (
        "text", "bigint", "text", "ARRAY",
    )  # fmt: skip
    assert (columns["factors"], columns["reasons"], columns["confidence_score"]) == (
        "jsonb",
        "text",
        "double precision",
    )
    assert view_sql(spec).startswith('create view "bi"."score_request" as select')
    assert view_sql(spec).endswith("from warehouse.fact_enrichment where task = 'score_request'")


def test_a_source_event_is_not_a_fact(case_event: Envelope[CaseEvent]) -> None:
    with pytest.raises(TypeError, match="CaseEvent is not an AI result"):
        fact_row(case_event, POSITION)


def test_raw_event_row(case_event: Envelope[CaseEvent]) -> None:
    row = raw_event_row(case_event, KafkaPosition("crm.case.events", 3, 41))
    assert row["event_id"] == "evt-1"
    assert (row["type"], row["schemaversion"], row["subject"]) == ("crm.case.created", 1, "500A1")
    assert (row["topic"], row["kafka_partition"], row["kafka_offset"]) == ("crm.case.events", 3, 41)
    assert row["payload"]["description"] == "Invoice 42 was charged twice."
    assert row["event_time"] == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def test_nul_characters_postgres_cannot_store_are_replaced(
    ticket: Callable[..., Envelope[TicketClassification]],
) -> None:
    _, row = fact_row(ticket(rationale="bad\x00byte", escalation_reason="x\x00"), POSITION)
    assert row["escalation_reason"] == "x\ufffd"
    assert row["result"]["rationale"] == "bad\ufffdbyte"
    nested: Any = {"k\x00": ["a\x00", ("b", 1)], "n": None}
    assert scrub(nested) == {"k\ufffd": ["a\ufffd", ["b", 1]], "n": None}


def test_audit_row_defaults_applied_at_to_now_and_leaves_id_to_the_database() -> None:
    entry = CrmAuditEntry("res_1", "Case", "500A1", "AI_Category__c", None, "Billing", "applied", trace_id="t")
    before = datetime.now(UTC)
    row = audit_row(entry)
    assert "id" not in row
    assert row["applied_at"] >= before
    assert row["status"] == "applied" and row["after_value"] == "Billing"


def test_dlq_row_names_kafka_columns() -> None:
    entry = DlqEntry("ticket_classifier", "crm.case.events", 1, 9, "InvalidJSON", "invalid_json", "not JSON", 1,
                     datetime(2024, 5, 1, tzinfo=UTC), key="500A1", dlq_topic="crm.case.events.dlq")  # fmt: skip
    row = dlq_row(entry)
    assert (row["kafka_partition"], row["kafka_offset"], row["message_key"]) == (1, 9, "500A1")
    assert "partition" not in row and "offset" not in row and "key" not in row
