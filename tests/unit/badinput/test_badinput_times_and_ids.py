"""Bad input about time and identity: future timestamps, times without an offset, duplicated event ids.

Decisions (documented in docs/reliability.md):

- An envelope ``time`` more than :data:`~crmpilot.events.MAX_FUTURE_SKEW`
  (1 h, Kafka's own default for ``message.timestamp.after.max.ms``) ahead of
  the consumer's clock is refused (:class:`FutureTimestamp`, dead-lettered):
  the CRM writer protects a person's edit by comparing the record's
  ``LastModifiedDate`` with the event time, and a time in the far future
  would make every later edit look older and be overwritten. Ordinary clock
  skew (seconds, minutes) is accepted.
- A time without a UTC offset, anywhere in an event, is refused
  (:class:`InvalidPayload`): it cannot be compared with the CRM's times (the
  CRM writer used to fail the whole batch on it, again and again).
- A duplicated event id is what at-least-once delivery looks like: it is
  accepted, and every sink is idempotent on the result id derived from it, so
  the second copy changes nothing (the first copy wins).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from badinput_samples import EVENT_TIME, SAMPLES, envelope_obj, raw
from hypothesis import given, settings
from hypothesis import strategies as st

from crmpilot.crm import FakeCRM, write_back
from crmpilot.events import (
    MAX_FUTURE_SKEW,
    FutureTimestamp,
    InvalidPayload,
    PoisonMessage,
    TicketClassification,
    decode,
    result_id_for,
)
from crmpilot.warehouse import InMemoryWarehouse

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(sorted(SAMPLES)),
    st.timedeltas(min_value=timedelta(days=-3650), max_value=MAX_FUTURE_SKEW),
)
def test_times_up_to_the_allowed_skew_ahead_are_accepted(event_type: str, delta: timedelta) -> None:
    obj = envelope_obj(event_type, time=(NOW + delta).isoformat())
    assert decode(raw(obj), now=NOW).time == NOW + delta


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(sorted(SAMPLES)),
    st.timedeltas(
        min_value=MAX_FUTURE_SKEW + timedelta(microseconds=1),
        max_value=timedelta(days=2_000_000),  # NOW + this stays below datetime.max (year 9999)
    ),
)
def test_times_further_ahead_are_refused_as_future_timestamps(event_type: str, delta: timedelta) -> None:
    obj = envelope_obj(event_type, time=(NOW + delta).isoformat())
    with pytest.raises(FutureTimestamp, match="ahead of this consumer's clock") as info:
        decode(raw(obj), now=NOW)
    assert info.value.code == "future_timestamp"
    assert isinstance(info.value, InvalidPayload | PoisonMessage)


def test_year_9999_is_refused() -> None:
    with pytest.raises(FutureTimestamp):
        decode(raw(envelope_obj("crm.case.created", time="9999-12-31T23:59:59Z")))


def test_the_clock_skew_allowance_is_configurable() -> None:
    obj = envelope_obj("crm.case.created", time=(NOW + timedelta(minutes=10)).isoformat())
    with pytest.raises(FutureTimestamp):
        decode(raw(obj), now=NOW, max_future_skew=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("event_type", "path"),
    [
        ("crm.case.created", ("time",)),
        ("crm.case.updated", ("data", "last_modified")),
        ("crm.email.received", ("data", "received_at")),
        ("ai.ticket.classified", ("data", "provenance", "event_time")),
        ("ai.enrichment.completed", ("data", "provenance", "processed_at")),
    ],
)
def test_times_without_an_offset_are_refused_naming_the_field(event_type: str, path: tuple[str, ...]) -> None:
    obj = envelope_obj(event_type)
    node: Any = obj
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = "2026-11-02T09:30:00"
    with pytest.raises(InvalidPayload, match="without a UTC offset in " + ".".join(path)):
        decode(raw(obj))


def test_a_naive_time_would_break_the_crm_writers_human_edit_check() -> None:
    """Why naive times are refused at the edge: the write-back cannot compare them with the CRM's time."""
    crm = FakeCRM(user_id="005000000000001AAA")
    crm.put("Case", "500000000000001AAA", at=EVENT_TIME - timedelta(minutes=5))
    result = SAMPLES["ai.ticket.classified"]
    assert isinstance(result, TicketClassification)
    naive = result.model_copy(
        update={"provenance": result.provenance.model_copy(update={"event_time": datetime(2026, 11, 2, 9, 30)})}
    )
    with pytest.raises(TypeError):
        write_back([naive], crm, InMemoryWarehouse())


def test_a_far_future_time_would_let_the_crm_writer_overwrite_a_persons_edit() -> None:
    """Why future times are refused at the edge: the person's later edit looks older than the event."""
    crm = FakeCRM(user_id="005000000000001AAA")
    crm.put(
        "Case",
        "500000000000001AAA",
        by="005000000000002AAA",
        at=datetime.now(UTC),
        AI_Category__c="Refund",
    )
    result = SAMPLES["ai.ticket.classified"]
    assert isinstance(result, TicketClassification)
    future = result.model_copy(
        update={"provenance": result.provenance.model_copy(update={"event_time": datetime(9999, 1, 1, tzinfo=UTC)})}
    )
    [report] = write_back([future], crm, InMemoryWarehouse())
    assert report.status == "applied"  # the guard is defeated: hence FutureTimestamp at decode


# --- duplicated ids -------------------------------------------------------------------------


def test_duplicated_event_ids_are_accepted_and_map_to_one_result_id() -> None:
    first = decode(raw(envelope_obj("crm.case.created", id="evt-dup")))
    second_obj = envelope_obj("crm.case.created", id="evt-dup")
    second_obj["data"]["description"] = "a different text under the same id"
    second = decode(raw(second_obj))
    assert first.id == second.id
    assert result_id_for(first.id, "classify_ticket", "v1") == result_id_for(second.id, "classify_ticket", "v1")


def test_a_duplicated_source_event_is_stored_once_first_copy_wins() -> None:
    wh = InMemoryWarehouse()
    first = decode(raw(envelope_obj("crm.case.created", id="evt-dup")))
    second_obj = envelope_obj("crm.case.created", id="evt-dup")
    second_obj["data"]["subject"] = "changed"
    second = decode(raw(second_obj))
    from crmpilot.streaming import MessageContext

    ctx = MessageContext("crm.case.events", 0, 1, b"k", (), EVENT_TIME, "g")
    assert wh.write_raw_events([(first, ctx)]) == 1
    assert wh.write_raw_events([(second, ctx)]) == 0
    [row] = wh.raw_events.values()
    assert row["event_id"] == "evt-dup"


def test_a_duplicated_result_is_stored_once_and_applied_once() -> None:
    wh = InMemoryWarehouse()
    result = decode(raw(envelope_obj("ai.ticket.classified")))
    from crmpilot.streaming import MessageContext

    ctx = MessageContext("ai.ticket.classified", 0, 1, b"k", (), EVENT_TIME, "g")
    assert wh.write_results([(result, ctx)]) == 1
    assert wh.write_results([(result, ctx)]) == 0
    crm = FakeCRM(user_id="005000000000001AAA")
    crm.put("Case", "500000000000001AAA", at=EVENT_TIME - timedelta(minutes=5))
    first = write_back([result.data], crm, wh)
    again = write_back([result.data], crm, wh)
    assert [r.status for r in first] == ["applied"] and [r.status for r in again] == ["already_applied"]
    assert len(crm.writes) == 1


# --- a record without id or time -----------------------------------------------------------------
# Were they filled in on decode, each delivery would get a fresh id and a redelivery a second result.


@pytest.mark.parametrize("field", ["id", "time"])
def test_a_record_without_an_id_or_a_time_is_refused(field: str) -> None:
    obj = envelope_obj("crm.case.created")
    del obj[field]
    with pytest.raises(InvalidPayload, match=field):
        decode(raw(obj))
