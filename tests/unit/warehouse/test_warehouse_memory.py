"""The in-memory warehouse behaves like the real one: idempotent, and it can be 'down'."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmpilot.errors import Retryable
from crmpilot.events import CaseEvent, EmailSummary, Envelope, TicketClassification
from crmpilot.warehouse import (
    CrmAuditEntry,
    DlqEntry,
    FeedbackEntry,
    InMemoryWarehouse,
    KafkaPosition,
    Warehouse,
    WarehouseUnavailable,
)

POS = KafkaPosition("ai.ticket.classified", 0, 5)


def test_writing_results_twice_stores_each_once(
    ticket: Callable[..., Envelope[TicketClassification]], email: Envelope[EmailSummary]
) -> None:
    wh: Warehouse = InMemoryWarehouse()
    batch: list[tuple[Envelope[Any], KafkaPosition]] = [(ticket("evt-1"), POS), (ticket("evt-9"), POS), (email, POS)]
    assert wh.write_results(batch) == 3
    assert wh.write_results(batch) == 0
    assert isinstance(wh, InMemoryWarehouse)
    assert len(wh.facts["fact_ticket_classification"]) == 2
    assert len(wh.facts["fact_email_summary"]) == 1


def test_raw_events_dlq_and_feedback_are_idempotent(case_event: Envelope[CaseEvent]) -> None:
    wh = InMemoryWarehouse()
    assert wh.write_raw_events([(case_event, POS), (case_event, POS)]) == 1
    failed = DlqEntry("g", "crm.case.events", 0, 1, "InvalidJSON", "invalid_json", "bad", 1, datetime.now(UTC))
    assert wh.record_dlq([failed, failed]) == 1
    fb = FeedbackEntry("fb-1", "Case", "500A1", "AI_Category__c", "Billing", "Refund", datetime.now(UTC))
    assert wh.record_feedback([fb]) == 1 and wh.record_feedback([fb]) == 0


def test_audit_query_and_revert() -> None:
    wh = InMemoryWarehouse()
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    wh.record_crm_audit(
        [
            CrmAuditEntry(
                "r1", "Case", "500A1", "AI_Category__c", None, "Billing", "applied", run_id="a", applied_at=t0
            ),
            CrmAuditEntry("r2", "Case", "500A2", "AI_Category__c", "X", "Y", "skipped_human_edit", applied_at=t0),
            CrmAuditEntry(
                "r3",
                "Case",
                "500A3",
                "AI_Category__c",
                None,
                "Refund",
                "applied",
                run_id="b",
                applied_at=t0 + timedelta(hours=1),
            ),
        ]
    )
    assert [e.result_id for e in wh.crm_audit()] == ["r1", "r3"]
    assert [e.result_id for e in wh.crm_audit(since=t0 + timedelta(minutes=1))] == ["r3"]
    assert [e.result_id for e in wh.crm_audit(run_id="a")] == ["r1"]
    ids = [e.id for e in wh.crm_audit(result_ids=["r3"]) if e.id is not None]
    assert wh.mark_reverted(ids) == 1 and wh.mark_reverted(ids) == 0
    assert [e.result_id for e in wh.crm_audit(statuses=("reverted",))] == ["r3"]


def test_unavailable_raises_a_retryable_error(ticket: Callable[..., Envelope[TicketClassification]]) -> None:
    wh = InMemoryWarehouse()
    wh.unavailable = True
    with pytest.raises(WarehouseUnavailable) as caught:
        wh.write_results([(ticket(), POS)])
    assert isinstance(caught.value, Retryable)
    wh.unavailable = False
    assert wh.write_results([(ticket(), POS)]) == 1
