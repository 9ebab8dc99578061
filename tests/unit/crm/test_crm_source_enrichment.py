"""crm_source polls the objects the enrichment specs read as crm.record.* events: the plan, then the events, with
fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_source.bootstrap import bootstrap, polled_objects
from crm_source.handler import CRMSource
from crm_source.settings import Settings
from crmpilot.crm import FakeCRM
from crmpilot.crm.changes import SOURCE_OBJECTS, Route, SourceObject, record_sources
from crmpilot.crm.feedback import BUILT_IN, Watched, watched_fields
from crmpilot.crm.watermark import InMemoryWatermarkStore
from crmpilot.enrichments.registry import Registry, load_registry
from crmpilot.enrichments.spec import EnrichmentSpec, parse_spec
from crmpilot.events import Envelope, RecordChanged
from crmpilot.warehouse import InMemoryWarehouse
from crmpilot.warehouse.records import CrmAuditEntry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
BOT = "005000000000001AAA"
HUMAN = "005000000000002AAA"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CHURN_WRITES = ("Churn_Risk__c", "Churn_Reason__c", "AI_Churn_Result_Id__c", "AI_Churn_Review_Required__c")


def examples() -> Registry:
    return load_registry([EXAMPLES])


def churn_text() -> str:
    return (EXAMPLES / "churn_risk.yaml").read_text()


def variant(*replacements: tuple[str, str]) -> EnrichmentSpec:
    text = churn_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return parse_spec(text)[0]


def renewal() -> EnrichmentSpec:
    """A second spec on Opportunity, on a topic of its own, reading NextStep."""
    return variant(
        ("name: churn_risk", "name: renewal_risk"),
        ("topics: [crm.opportunity.events]", "topics: [crm.opportunity.renewals, crm.opportunity.events]"),
        ("path: fields.Description", "path: fields.NextStep"),
        ("rerun_on: [Description]", "rerun_on: [NextStep, StageName]"),
        ("churn_risk: Churn_Risk__c", "churn_risk: Renewal_Risk__c"),
        ("churn_reason: Churn_Reason__c", "churn_reason: Renewal_Reason__c"),
        ("result_id_field: AI_Churn_Result_Id__c", "result_id_field: AI_Renewal_Result_Id__c"),
        (
            "review_field: AI_Churn_Review_Required__c",
            "review_field: AI_Renewal_Review_Required__c\n  trace_field: AI_Renewal_Trace_Id__c",
        ),
    )


# -- the plan -------------------------------------------------------------------------------------


def test_the_example_registry_polls_the_opportunity_for_churn_risk() -> None:
    plan = record_sources(examples())
    assert plan.skipped == ()
    [opportunity] = plan.objects  # ticket_type reads crm.case.* events: the built-in Case poll's
    assert (opportunity.sobject, opportunity.kind, opportunity.enrichments) == (
        "Opportunity",
        "record",
        ("churn_risk",),
    )
    assert opportunity.topics == ("crm.opportunity.events",)
    assert opportunity.fields == ("Name", "Description", *CHURN_WRITES), (
        "what the inputs read, then what the spec writes"
    )
    assert opportunity.tracked == opportunity.fields
    assert opportunity.managed == CHURN_WRITES
    assert opportunity.state_key == "record:Opportunity"


def test_the_fields_a_filter_reads_are_polled_and_a_change_of_one_runs_the_spec_again() -> None:
    from crmpilot.enrichments import EnrichmentHandler
    from crmpilot.llm import LLMClient
    from crmpilot.llm.testing import FakeProvider

    spec = variant(
        ("  rerun_on: [Description]", "  rerun_on: [Description]\n  where: {fields.StageName: [Qualification]}"),
        ("  record_id: record_id", "  record_id: record_id\n  where: {fields.Type: [Renewal]}"),
    )
    [opportunity] = record_sources([spec]).objects
    assert {"StageName", "Type"} <= set(opportunity.fields)  # else the event never holds them: nothing would match
    handler = EnrichmentHandler(spec=spec, llm=LLMClient(FakeProvider()))
    data = {"fields": {"StageName": "Qualification"}}
    assert not handler._unchanged("crm.record.updated", {**data, "changed_fields": ["StageName"]})
    assert handler._unchanged("crm.record.updated", {**data, "changed_fields": ["Amount"]})


def test_specs_on_one_object_share_its_poll_and_each_gets_its_first_topic() -> None:
    [opportunity] = record_sources([*examples(), renewal()]).objects
    assert opportunity.enrichments == ("churn_risk", "renewal_risk")
    assert opportunity.topics == ("crm.opportunity.events", "crm.opportunity.renewals")
    read = ("Name", "Description", "NextStep", "StageName")
    renewal_writes = (
        "Renewal_Risk__c",
        "Renewal_Reason__c",
        "AI_Renewal_Result_Id__c",
        "AI_Renewal_Review_Required__c",
        "AI_Renewal_Trace_Id__c",
    )
    assert opportunity.fields == (*read, *CHURN_WRITES, *renewal_writes)
    assert opportunity.managed == (*CHURN_WRITES, *renewal_writes), (
        "no spec's write-back ever triggers another spec on the object"
    )


def test_each_topic_gets_the_event_types_its_specs_accept() -> None:
    new_only = variant(
        ("name: churn_risk", "name: first_look"),
        ("topics: [crm.opportunity.events]", "topics: [crm.opportunity.new]"),
        ("event_types: [crm.record.created, crm.record.updated]", "event_types: [crm.record.created]"),
        ("churn_risk: Churn_Risk__c", "churn_risk: First_Risk__c"),
        ("churn_reason: Churn_Reason__c", "churn_reason: First_Reason__c"),
        ("result_id_field: AI_Churn_Result_Id__c", "result_id_field: AI_First_Result_Id__c"),
    )
    [opportunity] = record_sources([*examples(), new_only]).objects
    assert opportunity.routes == (
        Route("crm.opportunity.events", ("crm.record.created", "crm.record.updated")),
        Route("crm.opportunity.new", ("crm.record.created",)),
    )
    world = World([opportunity])
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="fine")
    world.poll()
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Description="worse")
    stats = world.poll()
    assert [(t, e.type) for t, e in world.sink.sent] == [
        ("crm.opportunity.events", "crm.record.created"),
        ("crm.opportunity.new", "crm.record.created"),
        ("crm.opportunity.events", "crm.record.updated"),
    ], "an update would be dead-lettered by an enrichment that reads only new records"
    assert stats["record:Opportunity"].emitted == 1


def test_a_field_spelled_two_ways_is_queried_once_and_still_ours() -> None:
    spec = variant(("path: fields.Name, context: true", "path: fields.churn_risk__c, context: true"))
    [opportunity] = record_sources([spec]).objects
    assert opportunity.fields == (
        "churn_risk__c",
        "Description",
        "Churn_Reason__c",
        "AI_Churn_Result_Id__c",
        "AI_Churn_Review_Required__c",
    )
    assert "churn_risk__c" in (opportunity.managed or ())


def test_two_specs_on_one_topic_get_each_event_once() -> None:
    same_topic = variant(
        ("name: churn_risk", "name: churn_risk_again"), ("path: fields.Description", "path: fields.NextStep")
    )
    [opportunity] = record_sources([*examples(), same_topic]).objects
    assert opportunity.topics == ("crm.opportunity.events",)


def test_a_record_spec_without_a_crm_target_is_skipped_and_says_why() -> None:
    text = churn_text()
    no_crm = parse_spec(text[: text.index("crm:\n")] + "personal_outputs: [churn_reason]\n")[0]
    assert no_crm.crm is None
    plan = record_sources([no_crm])
    assert plan.objects == ()
    assert plan.skipped == (("churn_risk", "no crm target: it names no object to poll"),)


@pytest.mark.parametrize(
    ("replacement", "reason"),
    [
        (("path: fields.Description", "path: fields.Account.Name"), "inputs.description reads fields.Account.Name"),
        (
            ("rerun_on: [Description]", "rerun_on: [Description, 'Stage Name']"),
            "source.rerun_on 'Stage Name' is not a CRM field API name",
        ),
    ],
)
def test_a_spec_reading_what_a_record_event_cannot_hold_is_skipped(replacement: tuple[str, str], reason: str) -> None:
    plan = record_sources([variant(replacement)])
    assert plan.objects == ()
    [(name, why)] = plan.skipped
    assert name == "churn_risk" and why.startswith(reason)


def test_top_level_paths_of_the_record_event_need_no_field() -> None:
    spec = variant(("path: fields.Name, context: true", "path: sobject, context: true"))
    [opportunity] = record_sources([spec]).objects
    assert opportunity.fields[:1] == ("Description",)


def test_the_service_adds_the_declared_objects_after_the_built_in_ones() -> None:
    objects = polled_objects(Settings(objects=("Case", "Lead")), examples())
    assert [o.state_key for o in objects] == ["Case", "Lead", "record:Opportunity"]
    case = objects[0]
    assert case.fields[: len(SOURCE_OBJECTS["Case"].fields)] == SOURCE_OBJECTS["Case"].fields
    assert {"Type", "Reason", "AI_Type_Result_Id__c"} <= set(case.fields), (
        "ticket_type's fields: read, so overrides are seen"
    )
    assert case.tracked == SOURCE_OBJECTS["Case"].tracked, "but not diffed: they yield no case event"
    lead = objects[1]  # the built-in score_request writes the Lead's reasons: read too, so an override is seen
    assert lead.fields == (*SOURCE_OBJECTS["Lead"].fields, "AI_Score_Reasons__c")
    assert lead.tracked == SOURCE_OBJECTS["Lead"].tracked, "but not diffed: they yield no lead event"
    # without declared objects: no Opportunity poll, but the Case still reads what enrichments write on it (feedback)
    assert polled_objects(Settings(objects=("Case",), enrichment_objects=False), examples()) == [case]


def test_without_enrichment_specs_only_the_built_in_objects_are_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR", raising=False)
    case, email, lead = polled_objects(Settings())  # the built-in score_request spec is loaded all the same
    assert [case, email] == [SOURCE_OBJECTS[o] for o in ("Case", "EmailMessage")]
    assert lead.fields == (*SOURCE_OBJECTS["Lead"].fields, "AI_Score_Reasons__c")
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_BUILTIN", "false")
    assert polled_objects(Settings()) == [SOURCE_OBJECTS[o] for o in ("Case", "EmailMessage", "Lead")]


# -- the events -----------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Envelope[Any]]] = []

    async def send_many(self, topic: str, envelopes: Iterable[Envelope[Any]]) -> Sequence[object]:
        batch = [(topic, e) for e in envelopes]
        self.sent += batch
        return batch


class World:
    def __init__(self, objects: Sequence[SourceObject]) -> None:
        self.now = T0
        self.crm = FakeCRM(user_id=BOT)
        self.store = InMemoryWatermarkStore()
        self.warehouse = InMemoryWarehouse()
        self.sink = Sink()
        self.objects = objects
        self.watched: Watched = BUILT_IN

    def poll(self) -> dict[str, Any]:
        source = CRMSource(
            watched=self.watched,
            crm=self.crm,
            store=self.store,
            feedback=self.warehouse,
            sink=self.sink,
            topics={"case": "crm.case.events", "email": "crm.email.events", "lead": "crm.lead.events"},
            objects=self.objects,
            source="crm://test",
            overlap=timedelta(minutes=2),
            initial_lookback=timedelta(hours=1),
            clock=lambda: self.now,
        )
        return asyncio.run(source.poll_once())

    def tick(self, seconds: float = 10) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def last(self) -> tuple[str, str, str, RecordChanged]:
        topic, event = self.sink.sent[-1]
        return topic, event.type, event.subject, event.data


@pytest.fixture
def world() -> World:
    return World(record_sources(examples()).objects)


def test_a_new_opportunity_is_a_record_created_event_keyed_by_its_id(world: World) -> None:
    world.crm.put(
        "Opportunity",
        "006A",
        by=HUMAN,
        at=world.tick(),
        Name="Acme renewal",
        Description="They consider a competitor.",
        StageName="Prospecting",
    )
    stats = world.poll()
    [(topic, event)] = world.sink.sent
    assert (topic, event.type, event.subject, event.time) == (
        "crm.opportunity.events",
        "crm.record.created",
        "006A",
        world.now,
    )
    assert event.data == RecordChanged(
        sobject="Opportunity",
        record_id="006A",
        fields={"Name": "Acme renewal", "Description": "They consider a competitor."},
        last_modified=world.now,
    ), "the fields the spec reads, not what crmpilot writes"
    assert stats["record:Opportunity"].emitted == 1
    assert (
        world.store.load("crm://test", "record:Opportunity") is not None
        and world.store.load("crm://test", "Opportunity") is None
    )


def test_an_update_says_which_fields_changed(world: World) -> None:
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme renewal", Description="fine")
    world.poll()
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Description="They consider a competitor.")
    world.poll()
    topic, event_type, subject, data = world.last()
    assert (topic, event_type, subject, data.changed_fields) == (
        "crm.opportunity.events",
        "crm.record.updated",
        "006A",
        ("Description",),
    )
    assert data.fields["Description"] == "They consider a competitor."


def test_our_own_write_back_of_the_spec_fields_emits_nothing(world: World) -> None:
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="fine")
    world.poll()
    world.crm.put(
        "Opportunity",
        "006A",
        by=BOT,
        at=world.tick(),
        Churn_Risk__c="high",
        Churn_Reason__c="fine",
        AI_Churn_Result_Id__c="r1",
        AI_Churn_Review_Required__c=False,
    )
    stats = world.poll()
    assert len(world.sink.sent) == 1
    assert (stats["record:Opportunity"].own_writes, stats["record:Opportunity"].emitted) == (1, 0)
    assert world.poll()["record:Opportunity"].duplicates == 1, "and re-reading it later emits nothing either"
    assert len(world.sink.sent) == 1


def test_a_persons_edit_masked_by_our_later_write_is_still_emitted_alone(world: World) -> None:
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="fine")
    world.poll()
    world.crm.put(
        "Opportunity", "006A", by=HUMAN, at=world.tick(), Description="Budget review, they look at other vendors."
    )
    world.crm.put("Opportunity", "006A", by=BOT, at=world.tick(), Churn_Risk__c="medium", AI_Churn_Result_Id__c="r1")
    world.poll()
    assert world.last()[1:3] == ("crm.record.updated", "006A")
    assert world.last()[3].changed_fields == ("Description",)


def test_the_integration_user_changing_a_field_the_spec_reads_is_a_change(world: World) -> None:
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="fine")
    world.poll()
    world.crm.put("Opportunity", "006A", by=BOT, at=world.tick(), Description="imported from the old CRM")
    world.poll()
    assert world.last()[3].changed_fields == ("Description",)


def test_a_person_overriding_the_ai_value_is_an_update_naming_it_and_no_feedback(world: World) -> None:
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="fine")
    world.poll()
    world.crm.put("Opportunity", "006A", by=BOT, at=world.tick(), Churn_Risk__c="high", AI_Churn_Result_Id__c="r1")
    world.poll()
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Churn_Risk__c="low")
    stats = world.poll()
    assert world.last()[1] == "crm.record.updated" and world.last()[3].changed_fields == ("Churn_Risk__c",)
    assert stats["record:Opportunity"].feedback == 0 and not world.warehouse.feedback


def test_one_poll_per_object_feeds_every_topic_of_its_specs() -> None:
    world = World(record_sources([*examples(), renewal()]).objects)
    world.crm.put(
        "Opportunity",
        "006A",
        by=HUMAN,
        at=world.tick(),
        Name="Acme",
        Description="fine",
        NextStep="call",
        StageName="Prospecting",
    )
    world.poll()
    assert world.crm.api_calls == 1
    assert [(t, e.type, e.subject) for t, e in world.sink.sent] == [
        ("crm.opportunity.events", "crm.record.created", "006A"),
        ("crm.opportunity.renewals", "crm.record.created", "006A"),
    ]
    assert world.sink.sent[0][1] == world.sink.sent[1][1]
    assert world.sink.sent[0][1].data.fields == {
        "Name": "Acme",
        "Description": "fine",
        "NextStep": "call",
        "StageName": "Prospecting",
    }
    world.crm.put("Opportunity", "006A", by=BOT, at=world.tick(), Renewal_Risk__c="low", AI_Renewal_Trace_Id__c="t")
    stats = world.poll()
    assert len(world.sink.sent) == 2 and stats["record:Opportunity"].own_writes == 1, (
        "one spec's write-back triggers neither spec"
    )


def test_a_record_the_integration_user_made_and_never_seen_is_taken_for_our_own_like_a_case(world: World) -> None:
    world.crm.put("Opportunity", "006B", by=BOT, at=world.tick(), Name="Beta", Description="imported")
    world.crm.put("Case", "500B", by=BOT, at=world.tick(), Subject="imported")
    world.objects = [SOURCE_OBJECTS["Case"], *world.objects]
    stats = world.poll()
    assert world.sink.sent == []
    assert stats["Case"].own_writes == stats["record:Opportunity"].own_writes == 1


def test_values_are_what_a_record_event_holds(world: World) -> None:
    when = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name=when, Description={"street": "Main St 1"})
    world.poll()
    assert world.last()[3].fields == {"Name": "2026-10-01T09:30:00+00:00", "Description": '{"street": "Main St 1"}'}


def test_a_record_spec_on_case_leaves_the_built_in_case_poll_as_it_was() -> None:
    on_case = variant(
        ("topics: [crm.opportunity.events]", "topics: [crm.case.records]"),
        ("object: Opportunity", "object: Case"),
        ("path: fields.Name", "path: fields.Subject"),
    )
    [declared] = record_sources([on_case]).objects
    world = World([SOURCE_OBJECTS["Case"], declared])
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Subject="Card declined", Description="twice", Origin="Web")
    stats = world.poll()
    (case_topic, case_event), (record_topic, record_event) = world.sink.sent
    assert (case_topic, case_event.type, record_topic, record_event.type) == (
        "crm.case.events",
        "crm.case.created",
        "crm.case.records",
        "crm.record.created",
    )
    assert case_event.id != record_event.id, "two events, two ids"
    assert set(stats) == {"Case", "record:Case"}
    world.crm.put("Case", "500A", by=BOT, at=world.tick(), Churn_Risk__c="low", AI_Category__c="Payments")
    world.poll()
    assert len(world.sink.sent) == 2, "the built-in AI fields and the spec's are crmpilot's own on both polls"


def test_bootstrap_polls_the_declared_objects_with_the_given_registry() -> None:
    crm, sink = FakeCRM(user_id=BOT), Sink()
    crm.put("Opportunity", "006A", by=HUMAN, Name="Acme", Description="fine")
    service = bootstrap(
        Settings(objects=("Case",)),
        crm=crm,
        store=InMemoryWatermarkStore(),
        warehouse=InMemoryWarehouse(),
        sink=sink,
        registry=examples(),
    )
    stats = asyncio.run(service._source.poll_once())
    assert set(stats) == {"Case", "record:Opportunity"}
    assert [(t, e.type) for t, e in sink.sent] == [("crm.opportunity.events", "crm.record.created")]


# -- feedback on declared fields -------------------------------------------------------------------


def _world_with_feedback(objects: Sequence[SourceObject]) -> World:
    world = World(objects)
    world.watched = watched_fields(examples())
    return world


def test_a_persons_override_of_a_declared_field_is_feedback_and_a_later_unrelated_edit_adds_none() -> None:
    world = _world_with_feedback(record_sources(examples()).objects)
    world.crm.put(
        "Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme", Description="They look at a competitor."
    )
    world.poll()
    world.crm.put(
        "Opportunity",
        "006A",
        by=BOT,
        at=world.tick(),
        Churn_Risk__c="high",
        Churn_Reason__c="They look at a competitor.",
        AI_Churn_Result_Id__c="r1",
    )
    world.warehouse.record_crm_audit([
        CrmAuditEntry("r1", "Opportunity", "006A", "Churn_Risk__c", None, "high", "applied"),
        CrmAuditEntry("r1", "Opportunity", "006A", "Churn_Reason__c", None, "They look at a competitor.", "applied"),
    ])  # fmt: skip
    world.poll()
    assert world.warehouse.feedback == {}, "our own write is no feedback"
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Churn_Risk__c="medium")
    world.poll()
    world.crm.put("Opportunity", "006A", by=HUMAN, at=world.tick(), Name="Acme Corp")
    world.poll()
    [feedback] = world.warehouse.feedback.values()
    assert (feedback.sobject, feedback.field, feedback.ai_value, feedback.human_value) == (
        "Opportunity",
        "Churn_Risk__c",
        "high",
        "medium",
    )
    assert (feedback.result_id, feedback.changed_by, feedback.record_id) == ("r1", HUMAN, "006A")


def test_an_override_of_a_standard_field_a_spec_writes_on_a_built_in_object_is_feedback() -> None:
    objects = polled_objects(Settings(objects=("Case",)), examples())
    world = _world_with_feedback(objects)
    world.crm.put(
        "Case", "500A", by=HUMAN, at=world.tick(), Subject="card declined", Description="my card was declined"
    )
    world.poll()
    world.crm.put(
        "Case", "500A", by=BOT, at=world.tick(), Type="Payments", Reason="Card declined", AI_Type_Result_Id__c="t1"
    )
    world.warehouse.record_crm_audit([
        CrmAuditEntry("t1", "Case", "500A", "Type", None, "Payments", "applied"),
        CrmAuditEntry("t1", "Case", "500A", "Reason", None, "Card declined", "applied"),
    ])  # fmt: skip
    world.poll()
    world.crm.put("Case", "500A", by=HUMAN, at=world.tick(), Type="Fraud")
    world.poll()
    [feedback] = world.warehouse.feedback.values()
    assert (feedback.sobject, feedback.field, feedback.ai_value, feedback.human_value, feedback.result_id) == (
        "Case",
        "Type",
        "Payments",
        "Fraud",
        "t1",
    )


def test_a_declared_lead_spec_is_not_re_run_by_the_built_in_scores_write_back() -> None:
    """score_request writes the Lead from request events, not crm.record.*: its fields are ours all the same."""
    lead_spec = variant(
        ("name: churn_risk", "name: lead_churn"),
        ("object: Opportunity", "object: Lead"),
        ("  rerun_on: [Description]", "  rerun_on: [Description, AI_Score__c]"),
    )
    [lead] = record_sources([load_registry([], builtin=True).get("score_request"), lead_spec]).objects
    assert lead.managed is not None
    assert {"AI_Score__c", "AI_Score_Reasons__c", "AI_Result_Id__c"} <= set(lead.managed)
    assert "Description" not in lead.managed


def test_a_person_changing_the_lead_score_is_watched_without_declared_objects() -> None:
    settings = Settings(enrichment_objects=False)
    [lead] = [o for o in polled_objects(settings, load_registry([], builtin=True)) if o.sobject == "Lead"]
    assert {"AI_Score__c", "AI_Score_Reasons__c"} <= set(lead.fields)
    assert ("AI_Score__c", "AI_Result_Id__c") in watched_fields(load_registry([], builtin=True))["Lead"]
