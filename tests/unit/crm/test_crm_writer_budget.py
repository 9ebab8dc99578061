"""crm_writer's API budget: calls per 1,000 updates, and a pause (not a dead letter) when the limit is spent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_writer.handler import CRMWriter
from crm_writer.settings import Settings
from crmpilot.crm import CRMLimitExceeded, FakeCRM, RecordUpdate, UpdateOutcome
from crmpilot.events import Envelope
from crmpilot.streaming import MessageContext
from crmpilot.warehouse import InMemoryWarehouse
from tests.resultkit import classified_event

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HUMAN = "005000000000002AAA"


def result_event(case_id: str) -> Envelope[Any]:
    return classified_event(case_id, event_time=EVENT_TIME)


CTX = MessageContext("ai.ticket.classified", 0, 1, b"k", (), EVENT_TIME, "crm-writer")


def cases(crm: FakeCRM, n: int) -> list[str]:
    ids = [f"5000000000{i:05d}AAA" for i in range(n)]
    for case_id in ids:
        crm.put("Case", case_id, by=HUMAN, at=EVENT_TIME - timedelta(minutes=5))
    return ids


async def write_all(writer: CRMWriter, ids: Sequence[str]) -> list[Any]:
    return await asyncio.gather(*(writer(result_event(c), CTX) for c in ids), return_exceptions=True)


@pytest.mark.parametrize(("batch_size", "per_1000"), [(200, 10.0), (1000, 6.0), (2000, 5.5)])
def test_api_calls_per_1000_updates(batch_size: int, per_1000: float) -> None:
    crm = FakeCRM()
    writer = CRMWriter(crm, InMemoryWarehouse(), batch_size=batch_size, batch_delay_s=0.05)
    ids = cases(crm, 4000 if batch_size == 2000 else 1000)
    outcomes = asyncio.run(write_all(writer, ids))
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    assert writer.updates == len(ids)
    print(f"batch_size={batch_size}: {writer.api_calls} API calls for {writer.updates} updates"
          f" = {writer.api_calls_per_1000_updates} per 1,000")  # fmt: skip
    assert writer.api_calls_per_1000_updates == per_1000


class LimitedCRM(FakeCRM):
    """Answers REQUEST_LIMIT_EXCEEDED while ``spent`` is set, counting the calls it refused."""

    def __init__(self) -> None:
        super().__init__()
        self.spent = False
        self.refused = 0

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        if self.spent:
            self.refused += 1
            raise CRMLimitExceeded("REQUEST_LIMIT_EXCEEDED", code="REQUEST_LIMIT_EXCEEDED", retry_after=300.0)
        return super().update(updates)


def test_limit_exceeded_pauses_writes_without_spending_calls() -> None:
    crm = LimitedCRM()
    now = [1000.0]
    writer = CRMWriter(crm, InMemoryWarehouse(), batch_delay_s=0.01, limit_pause_s=300.0, clock=lambda: now[0])
    ids = cases(crm, 3)
    crm.spent = True
    first = asyncio.run(write_all(writer, ids))
    assert all(isinstance(o, CRMLimitExceeded) and o.retry_after == 300.0 for o in first)
    assert crm.refused == 1, "the three results shared one refused call"

    now[0] += 100
    [paused] = asyncio.run(write_all(writer, ids[:1]))
    assert isinstance(paused, CRMLimitExceeded) and paused.retry_after == pytest.approx(200.0)
    assert crm.refused == 1, "while paused no call is made"

    crm.spent = False
    now[0] += 201
    assert asyncio.run(write_all(writer, ids)) == [(), (), ()]
    assert crm.records[("Case", ids[0])]["AI_Category__c"] == "Payments"


def test_default_settings_keep_retrying_through_long_outages() -> None:
    settings = Settings()
    assert settings.retry_window_s() >= 3 * 3600, "a CRM outage of 3 hours does not dead-letter good results"
    assert settings.retry_window_s(settings.limit_pause_s) >= 8 * 3600, "nor does a spent API budget for 8 hours"


def test_in_flight_must_cover_a_batch() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        Settings(batch_size=800, max_in_flight=100)
