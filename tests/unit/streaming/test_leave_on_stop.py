"""A static member leaves its group on a graceful stop (issue 18): ``leave_group_on_stop``.

KIP-345: a static member's ``close()`` sends no LeaveGroup, so its partitions
would idle for the whole session after a scale-down or a stop for good. The
runtime unsubscribes first (librdkafka sends the LeaveGroup then), waits a
bounded time for the revoke and the leave, then closes; not on a fatal error,
not for a dynamic member (its close leaves anyway), not when switched off. The
effect on a real broker is measured by the chaos suite (``rolling-restart``,
``scale-1-3-1``) and described in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, GroupMembershipSettings, RuntimeSettings


class FakeConsumer:
    """What the shutdown path calls on a librdkafka consumer; leaves after ``polls_to_leave`` polls."""

    def __init__(self, polls_to_leave: int = 2, *, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.polls_to_leave = polls_to_leave
        self.subscribed = True
        self.fail = fail

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")
        if self.fail:
            raise RuntimeError("Consumer closed")
        self.subscribed = False

    def assignment(self) -> list[Any]:
        return [] if not self.subscribed and self.polls_to_leave <= 0 else ["tp"]

    def memberid(self) -> str | None:
        return None if not self.subscribed and self.polls_to_leave <= 0 else "member-1"

    def consume(self, n: int, timeout: float) -> list[Any]:
        self.calls.append("consume")
        self.polls_to_leave -= 1
        return []

    def close(self) -> None:
        self.calls.append("close")


async def _nothing(*_: Any) -> None:
    return None


def _service(**settings: Any) -> ConsumerService:
    return ConsumerService(
        _nothing, RuntimeSettings(group_id="g", topics=("t",), **settings), KafkaSettings(bootstrap="b:1")
    )


def _shutdown(service: ConsumerService, consumer: FakeConsumer) -> None:
    async def go() -> None:
        service._executor = ThreadPoolExecutor(max_workers=1)
        service._hurry = asyncio.Event()
        service._consumer = consumer  # type: ignore[assignment]  # a fake consumer with only the calls the service makes
        await service._shutdown()

    asyncio.run(go())


def test_a_static_member_unsubscribes_and_waits_for_the_leave_before_closing() -> None:
    consumer = FakeConsumer(polls_to_leave=2)
    _shutdown(_service(group_instance_id="svc-1"), consumer)
    assert consumer.calls == ["unsubscribe", "consume", "consume", "close"]


def test_a_dynamic_member_just_closes_its_close_leaves() -> None:
    consumer = FakeConsumer()
    _shutdown(_service(), consumer)
    assert consumer.calls == ["close"]


def test_switched_off_a_static_member_stays_in_its_group_for_a_restart() -> None:
    consumer = FakeConsumer()
    _shutdown(_service(group_instance_id="svc-1", leave_group_on_stop=False), consumer)
    assert consumer.calls == ["close"]


def test_a_fatal_stop_does_not_leave_the_restart_takes_the_partitions_back() -> None:
    consumer = FakeConsumer()
    service = _service(group_instance_id="svc-1")
    service._fatal = RuntimeError("fenced")
    _shutdown(service, consumer)
    assert consumer.calls == ["close"]


def test_the_leave_wait_is_bounded_and_a_failed_unsubscribe_still_closes() -> None:
    stuck = FakeConsumer(polls_to_leave=10**9)
    service = _service(group_instance_id="svc-1")
    assert service._leave_group(stuck, wait_s=0.2) is False  # type: ignore[arg-type]  # a fake consumer with only the calls the service makes
    assert stuck.calls[0] == "unsubscribe" and stuck.calls.count("consume") >= 1
    broken = FakeConsumer(fail=True)
    _shutdown(_service(group_instance_id="svc-1"), broken)
    assert broken.calls == ["unsubscribe", "close"]


def test_every_service_reads_leave_group_on_stop_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GroupMembershipSettings().leave_group_on_stop is True
    assert (
        RuntimeSettings(
            group_id="g", topics=("t",), **GroupMembershipSettings(leave_group_on_stop=False).membership()
        ).leave_group_on_stop
        is False
    )
    from warehouse_writer.settings import Settings

    monkeypatch.setenv("CRMPILOT_WAREHOUSE_WRITER_LEAVE_GROUP_ON_STOP", "false")
    assert Settings().runtime().leave_group_on_stop is False
