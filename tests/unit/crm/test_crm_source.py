"""crm_source with fakes: one event per change, none for our own write-backs, a watermark that resumes, feedback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_source.handler import CRMSource
from crm_source.settings import Settings
from crmpilot.crm import FakeCRM
from crmpilot.crm.changes import SOURCE_OBJECTS
from crmpilot.crm.watermark import InMemoryWatermarkStore
from crmpilot.events import Envelope
from crmpilot.warehouse import CrmAuditEntry, InMemoryWarehouse

BOT = "005000000000001AAA"
HUMAN = "005000000000002AAA"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Envelope[Any]]] = []

    async def send_many(self, topic: str, envelopes: Iterable[Envelope[Any]]) -> Sequence[object]:
        batch = [(topic, e) for e in envelopes]
        self.sent += batch
        return batch

    def types(self) -> list[tuple[str, str, str]]:
        return [(topic, e.type, e.subject) for topic, e in self.sent]


class World:
    def __init__(self) -> None:
        self.now = T0
        self.crm = FakeCRM(user_id=BOT)
        self.store = InMemoryWatermarkStore()
        self.warehouse = InMemoryWarehouse()
        self.sink = Sink()

    def source(self, *objects: str, page_size: int | None = None) -> CRMSource:
        return CRMSource(
            crm=self.crm,
            store=self.store,
            feedback=self.warehouse,
            sink=self.sink,
            topics={"case": "crm.case.events", "email": "crm.email.events", "lead": "crm.lead.events"},
            objects=[SOURCE_OBJECTS[o] for o in objects or ("Case",)],
            source="crm://test",
            overlap=timedelta(minutes=2),
            initial_lookback=timedelta(hours=1),
            page_size=page_size,
            clock=lambda: self.now,
        )

    def tick(self, seconds: float = 10) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def poll(self, *objects: str, page_size: int | None = None) -> dict[str, Any]:
        return asyncio.run(self.source(*objects, page_size=page_size).poll_once())


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_case_is_one_created_event_keyed_by_its_id(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="Card declined", Description="twice", Origin="Web")
    world.poll()
    [(topic, event)] = world.sink.sent
    assert (topic, event.type, event.subject) == ("crm.case.events", "crm.case.created", "500A")
    assert (event.data.subject, event.data.description, event.data.origin) == ("Card declined", "twice", "Web")


def test_an_update_says_which_fields_changed(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="Card declined", Status="New")
    world.poll()
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Description="and now my account is locked")
    world.poll()
    assert world.sink.types()[-1] == ("crm.case.events", "crm.case.updated", "500A")
    assert world.sink.sent[-1][1].data.changed_fields == ("Description",)


def test_polling_again_emits_nothing_new(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="a")
    world.poll()
    stats = world.poll()
    assert len(world.sink.sent) == 1
    assert stats["Case"].duplicates == 1, "re-read inside the overlap window and dropped"


def test_our_own_write_back_emits_nothing(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="a")
    world.poll()
    world.crm.put("Case", "500A", by=BOT, at=world.tick(), AI_Category__c="Payments", AI_Result_Id__c="r1")
    stats = world.poll()
    assert len(world.sink.sent) == 1 and stats["Case"].own_writes == 1


def test_a_persons_edit_masked_by_our_later_write_is_still_emitted(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="a")
    world.poll()
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Description="more detail")
    world.crm.put("Case", "500A", by=BOT, at=world.tick(), AI_Category__c="Payments")
    world.poll()
    assert world.sink.sent[-1][1].data.changed_fields == ("Description",)


def test_a_case_created_before_the_first_watermark_is_an_update_with_unknown_fields(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=T0 - timedelta(days=3), Subject="old")
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Status="Working")
    world.poll()
    assert world.sink.types() == [("crm.case.events", "crm.case.updated", "500A")]
    assert world.sink.sent[0][1].data.changed_fields == ()


def test_a_restart_resumes_from_the_stored_watermark_without_gaps_or_duplicates(world: World) -> None:
    for n in range(7):
        world.crm.put("Case", f"500{n}", by=HUMAN, at=world.tick(), Subject=f"case {n}")
    world.poll(page_size=3)
    assert world.store.load("crm://test", "Case").at == world.now  # type: ignore[union-attr]  # the poll just stored a checkpoint
    world.crm.put("Case", "5003", by=HUMAN, at=world.tick(), Subject="case 3, edited")
    world.crm.put("Case", "5009", by=HUMAN, at=world.tick(), Subject="case 9")
    world.poll(page_size=3)  # a new CRMSource: only the store carries over
    assert [e.subject for _, e in world.sink.sent] == [f"500{n}" for n in range(7)] + ["5003", "5009"]
    assert [e.type for _, e in world.sink.sent][-2:] == ["crm.case.updated", "crm.case.created"]


def test_a_re_emitted_change_carries_the_same_event_id(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="a")
    world.poll()
    world.store = InMemoryWatermarkStore()  # as if the save after the broker's ack was lost
    world.poll()
    first, again = (e.id for _, e in world.sink.sent)
    assert first == again


def test_new_incoming_email_and_new_lead_become_their_events(world: World) -> None:
    world.crm.put("EmailMessage", "02sA", by=HUMAN, at=world.tick(), ParentId="500A", Subject="Refund?",
                  TextBody="Where is my refund", FromAddress="ana@example.com", Incoming=True)  # fmt: skip
    world.crm.put(
        "EmailMessage", "02sB", by=HUMAN, at=world.tick(), Subject="Re: Refund", TextBody="On its way", Incoming=False
    )
    world.crm.put("Lead", "00QA", by=HUMAN, at=world.tick(), Company="Acme", Email="cfo@acme.example",
                  NumberOfEmployees=250, Title="CFO", Description="wants a quote")  # fmt: skip
    world.poll("EmailMessage", "Lead")
    assert world.sink.types() == [
        ("crm.email.events", "crm.email.received", "02sA"),
        ("crm.lead.events", "erp.request.submitted", "00QA"),
    ]
    email, lead = (e.data for _, e in world.sink.sent)
    assert (email.case_id, email.from_address, email.body) == ("500A", "ana@example.com", "Where is my refund")
    assert (lead.kind, lead.company, lead.employees) == ("lead", "Acme", 250)
    assert "Title: CFO" in lead.description and "wants a quote" in lead.description


def test_a_person_overriding_the_ai_category_is_recorded_as_feedback(world: World) -> None:
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="a")
    world.poll()
    world.crm.put(
        "Case", "500A", by=BOT, at=world.tick(), AI_Category__c="Payments", AI_Priority__c="High", AI_Result_Id__c="r1"
    )
    world.warehouse.record_crm_audit([
        CrmAuditEntry("r1", "Case", "500A", "AI_Category__c", None, "Payments", "applied"),
        CrmAuditEntry("r1", "Case", "500A", "AI_Priority__c", None, "High", "applied"),
    ])  # fmt: skip
    world.poll()
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), AI_Category__c="Billing")
    world.poll()
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Status="Working")
    world.poll()
    [feedback] = world.warehouse.feedback.values()
    assert (feedback.field, feedback.ai_value, feedback.human_value) == ("AI_Category__c", "Payments", "Billing")
    assert (feedback.result_id, feedback.changed_by, feedback.record_id) == ("r1", HUMAN, "500A")


def test_settings_refuse_an_unknown_object() -> None:
    with pytest.raises(ValueError, match="objects must be among"):
        Settings(objects=("Case", "Opportunity"))
