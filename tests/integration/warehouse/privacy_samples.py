"""Two people's data in every warehouse table and the response cache, written the way the services write it.

Ann (``ann.lee@example.com``) has a case, an e-mail on it and a lead; Bob
(``bob.ray@example.org``) has a case and an e-mail that copies Ann in. Each
source event has its AI result (also stored as a raw result event, as the
warehouse writer does), CRM write audit rows, a human override, a dead-lettered
record, the CRM source's seen-state, and response-cache entries.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from crmpilot.crm.watermark import PostgresWatermarkStore, SeenRecord, Watermark
from crmpilot.events import (
    CaseEvent,
    EmailReceived,
    EmailSummary,
    Envelope,
    Provenance,
    RequestSubmitted,
    ReviewDecision,
    TicketClassification,
    result_id_for,
)
from crmpilot.events.models import ActionItem, Entity
from crmpilot.llm.cache.base import CachedAnswer, CacheKey
from crmpilot.llm.cache.postgres import PostgresCache
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import (
    CrmAuditEntry,
    DlqEntry,
    FeedbackEntry,
    KafkaPosition,
    PostgresWarehouse,
)
from tests.scorekit import TOPIC as SCORE_TOPIC
from tests.scorekit import factor, scored_event, scored_request

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
ANN = "ann.lee@example.com"
BOB = "bob.ray@example.org"
ANN_CASE, ANN_EMAIL, ANN_LEAD = "500Ann0000001AbC", "02sAnn000001XyZ", "00QAnn00000LeAd"
BOB_CASE, BOB_EMAIL = "500Bob0000002DeF", "02sBob000002UvW"
ANN_TRACES = (ANN, ANN_CASE, ANN_EMAIL, ANN_LEAD, "Ann Lee", "Lee Consulting")
BOB_TRACES = (BOB, BOB_CASE, BOB_EMAIL, "Bob Ray")


@dataclass
class Person:
    events: list[Envelope[Any]]
    results: list[Envelope[Any]]

    @property
    def result_ids(self) -> list[str]:
        return [r.data.result_id for r in self.results]


def _provenance(source: Envelope[Any], prompt_id: str, topic: str, offset: int) -> Provenance:
    return Provenance(
        provider="openai", model="gpt-4o-mini", model_version="gpt-4o-mini-2024-07-18", prompt_id=prompt_id,
        prompt_version="v1", prompt_hash="a1b2c3d4e5f60718", input_hash=secrets.token_hex(32), tokens_in=420,
        tokens_out=80, cost_usd=Decimal("0.000111"), latency_ms=730.0, attempts=1, cache_hit=False,
        trace_id=secrets.token_hex(16), source_topic=topic, source_partition=0, source_offset=offset,
        source_event_id=source.id, event_time=source.time, processed_at=source.time + timedelta(seconds=3),
    )  # fmt: skip


def _case(case_id: str, email: str, name: str, offset: int) -> Envelope[CaseEvent]:
    return Envelope[CaseEvent](
        source="crm://salesforce/org-1",
        type="crm.case.created",
        schemaversion=1,
        subject=case_id,
        time=T0,
        data=CaseEvent(
            case_id=case_id,
            subject="Charged twice",
            origin="Email",
            account_id="001Acme000000001",
            contact_email=email,
            description=f"Hello, {name} here.\nInvoice 42 was charged twice. Write to {email}.",
        ),
    )


def _mail(email_id: str, case_id: str, sender: str, body: str) -> Envelope[EmailReceived]:
    return Envelope[EmailReceived](
        source="crm://salesforce/org-1", type="crm.email.received", schemaversion=1, subject=email_id, time=T0,
        data=EmailReceived(email_id=email_id, case_id=case_id, from_address=sender, to_address="support@acme.test",
                           subject="Re: Charged twice", body=body, received_at=T0),
    )  # fmt: skip


def _ticket(
    source: Envelope[CaseEvent], name: str, offset: int, *, review: ReviewDecision = "auto_apply"
) -> Envelope[TicketClassification]:
    data = TicketClassification(
        result_id=result_id_for(source.id, "classify_ticket", "v1"),
        review=review,
        provenance=_provenance(source, "classify_ticket", "crm.case.events", offset),
        case_id=source.data.case_id,
        category="Billing",
        priority="High",
        sentiment="negative",
        language="en",
        queue="billing",
        escalate=True,
        escalation_reason=f"{name} reports a double charge",
        confidence={"category": 0.93, "priority": 0.81},
        rationale=f"{name} ({source.data.contact_email}) was charged twice",
    )
    return Envelope[TicketClassification](
        source="crmpilot/ticket_classifier",
        type="ai.ticket.classified",
        schemaversion=1,
        subject=data.case_id,
        data=data,
    )


def _summary(source: Envelope[EmailReceived], name: str, offset: int) -> Envelope[EmailSummary]:
    mail = source.data
    data = EmailSummary(
        result_id=result_id_for(source.id, "summarize_email", "v1"), review="suggest",
        provenance=_provenance(source, "summarize_email", "crm.email.events", offset),
        email_id=mail.email_id, case_id=mail.case_id, summary=f"{name} asks for a refund of invoice 42.",
        intent="refund_request", sentiment="negative", urgency="high",
        action_items=(ActionItem(text=f"Refund {name}", owner="billing", quote=mail.body),),
        entities=(Entity(kind="order_number", value="42", quote=mail.body),),
        confidence=0.9, verified=False, grounding_failures=(f"reply to {mail.from_address}",),
    )  # fmt: skip
    return Envelope[EmailSummary](
        source="crmpilot/email_summarizer",
        type="ai.email.summarized",
        schemaversion=1,
        subject=mail.email_id,
        data=data,
    )


_OTHER_TABLES = (
    "warehouse.crm_source_seen, warehouse.crm_source_watermark, warehouse.erasures, warehouse.retention_purges"
)


def fresh_people(warehouse: PostgresWarehouse, db: psycopg.Connection, settings: DatabaseSettings) -> dict[str, Person]:
    """Empty the tables the warehouse fixture leaves alone (and the cache), then write both people."""
    db.execute(f"truncate {_OTHER_TABLES}")
    if db.execute("select to_regclass('llm.llm_cache')").fetchone() != (None,):
        db.execute("truncate llm.llm_cache")
    return write_people(warehouse, settings)


def write_people(warehouse: PostgresWarehouse, settings: DatabaseSettings) -> dict[str, Person]:
    """Write Ann's and Bob's data; returns their events and results."""
    ann_case = _case(ANN_CASE, ANN, "Ann Lee", 0)
    ann_mail = _mail(
        ANN_EMAIL,
        ANN_CASE,
        f"Ann Lee <{ANN}>",
        "Hi,\nplease refund invoice 42.\nAnn Lee, Lee Consulting",
    )
    ann_lead = Envelope[RequestSubmitted](
        source="crm://salesforce/org-1", type="erp.request.submitted", schemaversion=1, subject=ANN_LEAD, time=T0,
        data=RequestSubmitted(request_id=ANN_LEAD, kind="lead", company="Lee Consulting", contact_email=ANN.upper(),
                              country="Ireland", employees=12, description="Title: Owner\nWants 20 seats"),
    )  # fmt: skip
    bob_case = _case(BOB_CASE, BOB, "Bob Ray", 3)
    bob_mail = _mail(
        BOB_EMAIL,
        BOB_CASE,
        BOB,
        f"Hi,\nmy colleague {ANN} had the same problem.\nBob Ray",
    )

    ann_ticket = _ticket(ann_case, "Ann Lee", 0)
    ann_summary = _summary(ann_mail, "Ann Lee", 1)
    score = scored_request(
        _provenance(ann_lead, "score_request", "erp.request.events", 2), request_id=ANN_LEAD, kind="lead", score=71,
        risk_flags=("free_mail_domain",), next_action="Call Ann Lee about the 20 seats",
        factors=(factor("team_size", "up", 40, "Lee Consulting wants 20 seats"),), confidence=0.7, review="suggest",
    )  # fmt: skip
    ann_score = scored_event(score)
    bob_ticket = _ticket(bob_case, "Bob Ray", 3, review="suggest")
    bob_summary = _summary(bob_mail, "Bob Ray", 4)

    sources: list[Envelope[Any]] = [ann_case, ann_mail, ann_lead, bob_case, bob_mail]
    topics = {"crm.case.created": "crm.case.events", "crm.email.received": "crm.email.events",
              "erp.request.submitted": "erp.request.events"}  # fmt: skip
    warehouse.write_raw_events([(e, KafkaPosition(topics[e.type], 0, i)) for i, e in enumerate(sources)])
    results: list[Envelope[Any]] = [ann_ticket, ann_summary, ann_score, bob_ticket, bob_summary]
    result_topics = {"classify_ticket": "ai.ticket.classified", "summarize_email": "ai.email.summarized",
                     "score_request": SCORE_TOPIC}  # fmt: skip
    positions = [KafkaPosition(result_topics[r.data.task], 0, i) for i, r in enumerate(results)]
    warehouse.write_results(list(zip(results, positions, strict=True)))
    warehouse.write_raw_events(list(zip(results, positions, strict=True)))  # result topics are stored raw too

    at = T0 + timedelta(minutes=1)
    warehouse.record_crm_audit(
        [
            CrmAuditEntry(
                ann_ticket.data.result_id, "Case", ANN_CASE, "AI_Category__c", None, "Billing", "applied", applied_at=at
            ),
            CrmAuditEntry(
                ann_summary.data.result_id,
                "Case",
                ANN_CASE,
                "AI_Summary__c",
                f"Customer {ANN}",
                "Ann Lee asks for a refund of invoice 42.",
                "applied",
                applied_at=at,
            ),
            CrmAuditEntry(
                ann_score.data.result_id, "Lead", ANN_LEAD, "AI_Score__c", None, "71", "applied", applied_at=at
            ),
            CrmAuditEntry(
                bob_ticket.data.result_id,
                "Case",
                BOB_CASE,
                "AI_Category__c",
                "Other",
                "Billing",
                "applied",
                applied_at=at,
            ),
            CrmAuditEntry(
                bob_summary.data.result_id,
                "Case",
                BOB_CASE,
                "AI_Summary__c",
                None,
                "Bob Ray asks for a refund of invoice 42.",
                "skipped_human_edit",
                reason="edited by 005Agent",
                applied_at=at,
            ),
        ]
    )
    warehouse.record_feedback([
        FeedbackEntry("fb-ann", "Case", ANN_CASE, "AI_Category__c", "Billing", "Refund", at + timedelta(hours=1),
                      changed_by="005Agent0000001", result_id=ann_ticket.data.result_id),
        FeedbackEntry("fb-bob", "Case", BOB_CASE, "AI_Category__c", "Billing", "Refund", at + timedelta(hours=1),
                      changed_by="005Agent0000001", result_id=bob_ticket.data.result_id),
    ])  # fmt: skip
    failed = T0 + timedelta(minutes=2)
    warehouse.record_dlq(
        [
            DlqEntry(
                "ticket_classifier",
                "crm.case.events",
                0,
                90,
                "InvalidEvent",
                "invalid_event",
                f"contact_email {ANN!r}: description too long",
                1,
                failed,
                key=ANN_CASE,
                dlq_topic="crm.case.events.dlq",
            ),
            DlqEntry(
                "ticket_classifier",
                "crm.case.events",
                0,
                91,
                "InvalidEvent",
                "invalid_event",
                "description too long",
                1,
                failed,
                key=BOB_CASE,
                dlq_topic="crm.case.events.dlq",
            ),
        ]
    )

    store = PostgresWatermarkStore.connect(settings, timeout=5)
    try:
        mark = Watermark(at=T0, started_at=T0 - timedelta(days=1))
        store.save("crm://salesforce/org-1", "Case", mark, [
            SeenRecord(ANN_CASE, T0, {"Subject": "ab12", "SuppliedEmail": "cd34"}),
            SeenRecord(BOB_CASE, T0, {"Subject": "ab12", "SuppliedEmail": "ef56"}),
        ])  # fmt: skip
        store.save(
            "crm://salesforce/org-1",
            "Lead",
            mark,
            [SeenRecord(ANN_LEAD, T0, {"Email": "0a0a"})],
        )
    finally:
        store.close()

    asyncio.run(_write_cache(settings, ann_ticket.data, bob_ticket.data))
    return {
        "ann": Person([ann_case, ann_mail, ann_lead], [ann_ticket, ann_summary, ann_score]),
        "bob": Person([bob_case, bob_mail], [bob_ticket, bob_summary]),
    }


async def _write_cache(settings: DatabaseSettings, ann: TicketClassification, bob: TicketClassification) -> None:
    cache = PostgresCache(settings.url.get_secret_value())
    try:
        for result in (ann, bob):  # the answer behind each ticket, under its input hash
            p = result.provenance
            key = CacheKey(p.provider, p.model, "classify_ticket", p.prompt_hash, p.input_hash)
            await cache.put(
                key,
                CachedAnswer(
                    {"category": "Billing", "rationale": result.rationale},
                    p.model,
                    tokens_in=420,
                ),
            )
        stray = CacheKey(
            "openai",
            "gpt-4o-mini",
            "summarize_email",
            "a1b2c3d4e5f60718",
            secrets.token_hex(32),
        )
        await cache.put(stray, CachedAnswer({"summary": f"Forwarded by {ANN}"}, "gpt-4o-mini"))
    finally:
        await cache.aclose()


def scan(conn: psycopg.Connection[Any], needle: str) -> dict[str, int]:
    """Full-text scan: rows of every table in schemas warehouse and llm whose text contains ``needle`` (any case)."""
    tables = conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('warehouse', 'llm') and table_type = 'BASE TABLE' order by 1, 2"
    ).fetchall()
    hits = {}
    for schema, table in tables:
        row = conn.execute(
            sql.SQL("select count(*) from {} t where t::text ilike %s").format(sql.Identifier(schema, table)),
            (f"%{needle}%",),
        ).fetchone()
        if row and row[0]:
            hits[f"{schema}.{table}"] = row[0]
    return hits


def bi_snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every bi view's rows (sorted), leaving out the record-id columns an erasure replaces."""
    columns: dict[str, list[str]] = {}
    for view, column in conn.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'bi' order by "
        "table_name, ordinal_position"
    ).fetchall():
        if column not in ("subject", "record_id"):
            columns.setdefault(view, []).append(column)
    snapshot = {}
    for view, cols in columns.items():
        query = sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier("bi", view)
        )
        snapshot[view] = sorted(conn.execute(query).fetchall(), key=repr)
    return snapshot


def dump(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Every row of every table in schemas warehouse and llm, as text (to show that nothing changed)."""
    out = {}
    for schema, table in conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('warehouse', 'llm') and table_type = 'BASE TABLE'"
    ).fetchall():
        query = sql.SQL("select t::text from {} t").format(sql.Identifier(schema, table))
        out[f"{schema}.{table}"] = sorted(r[0] for r in conn.execute(query).fetchall())
    return out
