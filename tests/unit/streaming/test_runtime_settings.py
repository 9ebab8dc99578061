"""RuntimeSettings: validation and the librdkafka keys the runtime relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crmpilot.settings import KafkaSettings
from crmpilot.streaming import RuntimeSettings


def test_consumer_and_producer_keys() -> None:
    s = RuntimeSettings(group_id="g", topics=("a",), consumer_overrides={"session.timeout.ms": "6000"})
    kafka = KafkaSettings(bootstrap="b:1")
    c = s.consumer_config(kafka)
    assert c["bootstrap.servers"] == "b:1" and c["group.id"] == "g"
    assert c["enable.auto.commit"] is False
    assert c["partition.assignment.strategy"] == "cooperative-sticky"
    assert c["session.timeout.ms"] == "6000"
    p = s.producer_config(kafka)
    assert p["enable.idempotence"] is True and p["acks"] == "all"
    assert s.buffer_limit == 2048  # 32 x max_in_flight
    assert RuntimeSettings(group_id="g", topics=("a",), max_in_flight=4).buffer_limit == 1000
    assert s.dlq_topic("crm.case.events") == "crm.case.events.dlq"


@pytest.mark.parametrize(
    "kw",
    [
        {"topics": ()},
        {"max_in_flight": 0},
        {"max_in_flight": 100, "max_buffered": 10},
        {"backoff_initial_s": 5, "backoff_max_s": 1},
        {"consumer_overrides": {"enable.auto.commit": "true"}},
        {"producer_overrides": {"acks": "1"}},
        {"colour": "red"},
    ],
)
def test_invalid_settings_are_rejected(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RuntimeSettings(**{"group_id": "g", "topics": ("a",), **kw})  # type: ignore[arg-type]  # invalid values on purpose, for the validation to refuse


def test_settings_are_frozen() -> None:
    s = RuntimeSettings(group_id="g", topics=("a",))
    with pytest.raises(ValidationError):
        s.max_in_flight = 3


def test_group_membership_keys_and_static_membership() -> None:
    kafka = KafkaSettings(bootstrap="b:1")
    c = RuntimeSettings(group_id="g", topics=("a",)).consumer_config(kafka)
    assert (c["session.timeout.ms"], c["heartbeat.interval.ms"], c["max.poll.interval.ms"]) == (45_000, 3_000, 300_000)
    assert "group.instance.id" not in c  # dynamic membership unless asked
    assert c["statistics.interval.ms"] == 1000  # the group state feeds the liveness rule
    s = RuntimeSettings(
        group_id="g",
        topics=("a",),
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        max_poll_interval_ms=60_000,
        group_instance_id="classifier-0",
    )
    c = s.consumer_config(kafka)
    assert (c["session.timeout.ms"], c["heartbeat.interval.ms"], c["max.poll.interval.ms"]) == (10_000, 2_000, 60_000)
    assert c["group.instance.id"] == "classifier-0"


@pytest.mark.parametrize(
    "kw",
    [
        {"session_timeout_ms": 6000, "heartbeat_interval_ms": 6000},
        {"session_timeout_ms": 60_000, "max_poll_interval_ms": 30_000},
        {"consumer_overrides": {"session.timeout.ms": "400000"}},  # above the default max.poll.interval.ms
        {"group_instance_id": ""},
        {"liveness_timeout_s": 0},
    ],
)
def test_inconsistent_group_timings_are_rejected(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RuntimeSettings(**{"group_id": "g", "topics": ("a",), **kw})  # type: ignore[arg-type]  # invalid values on purpose, for the validation to refuse
