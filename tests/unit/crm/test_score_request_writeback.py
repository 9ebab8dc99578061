"""The built-in ``score_request`` result on the Lead: what its spec's ``crm`` block writes, and only for a lead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crm_writer.handler import CRMWriter
from crmpilot.crm import FakeCRM, write_back
from crmpilot.enrichments import load_registry
from crmpilot.events import Provenance
from crmpilot.warehouse import InMemoryWarehouse
from tests.handlerkit import context
from tests.scorekit import TOPIC, factor, scored_event, scored_request

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BOT = "005000000000001AAA"
HUMAN = "005000000000002AAA"
LEAD = "00Q000000000001AAA"
SPECS = {s.name: s for s in load_registry([])}  # the built-in specs: score_request


def provenance(event: str = "evt-lead-1") -> Provenance:
    return Provenance(
        provider="local", model="m", prompt_id="score_request", prompt_version="2026-12-08.1", prompt_hash="h",
        input_hash="i", tokens_in=10, tokens_out=0, cost_usd=Decimal(0), latency_ms=5, attempts=1,
        trace_id="t" * 32, source_topic="crm.lead.events", source_partition=0, source_offset=7,
        source_event_id=event, event_time=EVENT_TIME, processed_at=EVENT_TIME,
    )  # fmt: skip


def crm() -> FakeCRM:
    fake = FakeCRM(user_id=BOT)
    fake.put("Lead", LEAD, by=HUMAN, at=EVENT_TIME - timedelta(minutes=5), AI_Score__c=None)
    return fake


def test_a_leads_score_reasons_and_confidence_are_written_to_the_lead() -> None:
    fake = crm()
    result = scored_request(
        provenance(), request_id=LEAD, score=72, factors=(factor("budget stated"), factor("student", "down", 5)),
        risk_flags=("free_mail_domain",), confidence=0.91234, review="auto_apply",
    )  # fmt: skip
    writer = CRMWriter(fake, InMemoryWarehouse(), enrichments=SPECS)
    asyncio.run(writer(scored_event(result), context(TOPIC)))
    record = fake.records[("Lead", LEAD)]
    assert record["AI_Score__c"] == 72
    assert record["AI_Score_Reasons__c"] == "+ budget stated; - student; risk: free_mail_domain"
    assert record["AI_Confidence__c"] == 0.9123
    assert record["AI_Result_Id__c"] == result.result_id and record["AI_Review_Required__c"] is False
    assert record["AI_Trace_Id__c"] == "t" * 32
    assert record["LastModifiedById"] == BOT


def test_a_score_to_review_is_written_marked_for_review() -> None:
    fake = crm()
    result = scored_request(provenance(), request_id=LEAD, score=45, confidence=0.6, review="suggest")
    [report] = write_back([result], fake, InMemoryWarehouse(), enrichments=SPECS)
    assert report.status == "applied" and (report.sobject, report.record_id) == ("Lead", LEAD)
    record = fake.records[("Lead", LEAD)]
    assert (record["AI_Score__c"], record["AI_Review_Required__c"]) == (45, True)


def test_a_quote_is_scored_for_the_warehouse_only() -> None:
    fake = crm()
    quote = scored_request(provenance("evt-quote-1"), request_id=LEAD, kind="quote", score=90, review="auto_apply")
    write_back([quote], fake, InMemoryWarehouse(), enrichments=SPECS)
    assert fake.writes == [] and fake.records[("Lead", LEAD)]["AI_Score__c"] is None
