"""The liveness rule of a consumer-group member (crmpilot.streaming.liveness), on a fake clock."""

from __future__ import annotations

import json

import pytest

from crmpilot.streaming.config import RuntimeSettings
from crmpilot.streaming.liveness import MembershipWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def stats(state: str, join_state: str) -> str:
    return json.dumps(
        {
            "name": "c#consumer-1",
            "cgrp": {"state": state, "join_state": join_state, "assignment_size": 2},
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watch(clock: Clock) -> MembershipWatch:
    return MembershipWatch(member_timeout_s=12, poll_stall_s=16, clock=clock)


def polling(watch: MembershipWatch, clock: Clock, seconds: float, step: float = 0.5) -> None:
    """The consumer thread keeps polling for ``seconds``."""
    for _ in range(int(seconds / step)):
        clock.tick(step)
        watch.polled()


def test_alive_before_the_subscription_and_while_joining_within_the_limit(watch: MembershipWatch, clock: Clock) -> None:
    clock.tick(500)  # start-up (topic checks) is not judged
    assert watch.check().alive and watch.check().reason == "not subscribed"
    watch.subscribed()
    polling(watch, clock, 11.5)
    state = watch.check()
    assert state.alive and not state.member
    assert state.reason.startswith("not a group member for 12s: not joined yet")
    watch.assigned(3)
    state = watch.check()
    assert state.alive and state.member and state.without_membership_s == 0
    assert state.since_assignment_s == 0


def test_never_joining_is_not_alive_after_the_member_timeout(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    polling(watch, clock, 12.5)
    state = watch.check()
    assert not state.alive
    assert state.reason == "not a member of its consumer group for 12s (limit 12s): not joined yet"


def test_a_broker_restart_makes_it_unhealthy_after_the_limit_and_healthy_once_it_rejoins(
    watch: MembershipWatch, clock: Clock
) -> None:
    """The sequence librdkafka 2.x shows (observed on Kafka 4.1, session.timeout.ms=6000):
    _ALL_BROKERS_DOWN and cgrp state query-coord at once, on_lost after the session timeout,
    cgrp up/init then wait-join once the broker is back, then an assignment."""
    watch.subscribed()
    watch.assigned(2)
    watch.statistics(stats("up", "steady"))
    polling(watch, clock, 30)
    assert watch.check().alive and watch.check().member

    watch.left("all brokers down (1/1 brokers are down)")  # error_cb
    watch.statistics(stats("query-coord", "steady"))  # later signals keep the first leaving time
    polling(watch, clock, 6)
    watch.lost(2)
    watch.statistics(stats("query-coord", "init"))
    polling(watch, clock, 5.5)
    state = watch.check()
    assert state.alive and not state.member and state.without_membership_s == pytest.approx(11.5)
    assert state.since_assignment_s == pytest.approx(5.5)
    polling(watch, clock, 1)
    state = watch.check()
    assert not state.alive
    assert state.reason.startswith(
        "not a member of its consumer group for 12s (limit 12s): group state query-coord/init"
    )
    polling(watch, clock, 20)
    watch.statistics(stats("up", "wait-join"))  # the broker is back: rejoining
    assert not watch.check().alive
    polling(watch, clock, 6)
    watch.assigned(2)  # rejoined
    state = watch.check()
    assert state.alive and state.member and state.without_membership_s == 0 and state.since_assignment_s == 0


def test_a_short_rebalance_or_blip_does_not_count(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    watch.assigned(1)
    for _ in range(10):  # many short rebalances, each well below the limit
        watch.statistics(stats("up", "wait-join"))
        polling(watch, clock, 5)
        watch.statistics(stats("up", "steady"))
        polling(watch, clock, 5)
    assert watch.check().alive


def test_a_member_without_partitions_is_alive(watch: MembershipWatch, clock: Clock) -> None:
    """More members than partitions: the spare one is in its group, ready to take over."""
    watch.subscribed()
    watch.assigned(0)  # on_assign is called for every rebalance, even with nothing
    polling(watch, clock, 600)
    watch.statistics(stats("up", "steady"))
    state = watch.check()
    assert state.alive and state.member and state.since_assignment_s == pytest.approx(600)


def test_a_revoke_of_everything_keeps_the_membership_and_starts_the_unassigned_clock(
    watch: MembershipWatch, clock: Clock
) -> None:
    watch.subscribed()
    watch.assigned(2)
    polling(watch, clock, 3)
    watch.revoked(2)
    polling(watch, clock, 4)
    state = watch.check()
    assert state.alive and state.member and state.since_assignment_s == pytest.approx(4)


def test_a_consumer_thread_that_stops_polling_is_not_alive(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    watch.assigned(1)
    polling(watch, clock, 2)
    clock.tick(15.9)
    assert watch.check().alive
    clock.tick(0.2)
    state = watch.check()
    assert not state.alive and state.member  # still a member as far as it knows: the poll rule decides
    assert state.reason == "consumer thread stuck: no poll for 16s (limit 16s)"
    assert state.since_poll_s == pytest.approx(16.1)


def test_no_first_poll_counts_from_the_subscription(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    clock.tick(16.5)
    assert not watch.check().alive and watch.check().since_poll_s is None


def test_leaving_for_the_poll_interval_and_the_member_id(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    watch.assigned(1)
    watch.member_id("rdkafka-0f1e")
    assert watch.check().reason == "group member rdkafka-0f1e"
    watch.left("max.poll.interval.ms exceeded: left the group")
    watch.member_id(None)
    polling(watch, clock, 13)
    assert watch.check().reason.endswith("max.poll.interval.ms exceeded: left the group")


def test_unreadable_statistics_are_ignored(watch: MembershipWatch, clock: Clock) -> None:
    watch.subscribed()
    watch.assigned(1)
    watch.statistics("{not json")
    watch.statistics(json.dumps({"name": "no cgrp"}))
    assert watch.check().member


def test_thresholds_come_from_the_settings() -> None:
    s = RuntimeSettings(group_id="g", topics=("a",))
    assert (s.member_timeout_s, s.poll_stall_s) == (
        90.0,
        70.0,
    )  # 2 x 45 s; min(300 s, 60 s) + 10 s
    s = RuntimeSettings(
        group_id="g",
        topics=("a",),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=8000,
    )
    assert (s.member_timeout_s, s.poll_stall_s) == (12.0, 18.0)
    assert RuntimeSettings(group_id="g", topics=("a",), liveness_timeout_s=5).member_timeout_s == 5
    # a consumer_overrides entry wins over the field (older configurations keep working)
    s = RuntimeSettings(group_id="g", topics=("a",), consumer_overrides={"session.timeout.ms": "10000"})
    assert s.member_timeout_s == 20.0
