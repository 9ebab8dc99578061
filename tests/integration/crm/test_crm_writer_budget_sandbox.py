"""crm_writer's API budget against the CRM sandbox: calls per 1,000 updates, and a limit outage that loses nothing.

The figure is printed (run with ``-s``); the assertions are on call counts, never on time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from confluent_kafka import Producer
from crm_kit import adapter, classification, create_cases
from sandbox_support import Sandbox

from crm_writer.handler import CRMWriter
from crmpilot.crm.writeback import AuditLog
from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, MessageContext, RuntimeSettings
from crmpilot.warehouse import PostgresWarehouse
from tests.sfkit import sobject

pytestmark = pytest.mark.integration

CTX = MessageContext("ai.ticket.classified", 0, 0, b"k", (), None, "crm-writer")


def _envelope(case_id: str) -> Envelope[Any]:
    return Envelope[Any](
        source="tests", type="ai.ticket.classified", schemaversion=1, subject=case_id, data=classification(case_id)
    )


async def _write_all(writer: CRMWriter, cases: list[str]) -> list[Any]:
    return await asyncio.gather(*(writer(_envelope(c), CTX) for c in cases), return_exceptions=True)


@pytest.mark.parametrize(("batch_size", "updates", "most_calls"), [(1000, 1000, 6), (2000, 2000, 11)])
def test_api_calls_per_1000_updates(
    sb: Sandbox, warehouse: PostgresWarehouse, batch_size: int, updates: int, most_calls: int
) -> None:
    cases = create_cases(sb, updates)
    crm = adapter(sb)
    # cast: AuditLog.crm_audit takes statuses: Sequence[str], the warehouse's Sequence[AuditStatus] (narrower)
    writer = CRMWriter(crm, cast(AuditLog, warehouse), batch_size=batch_size, batch_delay_s=0.2)
    outcomes = asyncio.run(_write_all(writer, cases))
    assert outcomes == [()] * updates
    per_1000 = writer.api_calls_per_1000_updates
    print(
        f"\n[crm_writer] batch_size={batch_size}: {updates} case updates -> {writer.api_calls} API calls = "
        f"{per_1000:g} per 1,000 updates"
    )
    assert writer.updates == updates and writer.api_calls <= most_calls
    assert sobject(sb.client(), "Case").get(cases[-1])["AI_Category__c"] == "Payments"


def test_a_spent_api_limit_pauses_the_writer_and_loses_nothing(
    sb: Sandbox, warehouse: PostgresWarehouse, kafka_settings: KafkaSettings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("ai-results", partitions=3, with_dlq=True)
    cases = create_cases(sb, 40)
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap})
    for case in cases:
        envelope = _envelope(case)
        producer.produce(topic, encode(envelope), envelope.subject.encode())
    assert producer.flush(30) == 0

    sb.admin("POST", "faults", json={"limit_exceeded": True})
    crm = adapter(sb, limit_retry_after_s=1.0)
    writer = CRMWriter(crm, cast(AuditLog, warehouse), batch_size=200, batch_delay_s=0.1, limit_pause_s=1.0)
    runtime = RuntimeSettings(
        group_id=f"{topic}-writer",
        topics=(topic,),
        max_in_flight=400,
        max_attempts=50,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
    )
    service = ConsumerService(writer, runtime, kafka_settings)

    async def scenario() -> None:
        task = asyncio.create_task(service.run())
        try:
            await _until(lambda: service.stats.retries >= 40, timeout=60, task=task)
            refused_calls = writer.api_calls
            await asyncio.sleep(1.5)
            assert writer.api_calls - refused_calls <= 2, "paused: at most one refused call per pause"
            sb.admin("DELETE", "faults")
            await _until(lambda: writer.updates == 40, timeout=60, task=task)
        finally:
            service.stop()
            await asyncio.wait_for(task, 60)

    asyncio.run(scenario())
    assert service.stats.dead_lettered == 0
    assert all(sobject(sb.client(), "Case").get(c)["AI_Category__c"] == "Payments" for c in cases[:5])
    print(
        f"\n[crm_writer] limit outage: {service.stats.retries} retries, {writer.api_calls} API calls, 0 dead-lettered"
    )


async def _until(condition: Callable[[], bool], *, timeout: float, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if task.done():
            await task
            raise AssertionError("the service stopped")
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
