"""crm_source's loop: keeps polling through a CRM outage, stops on bad credentials, stops when asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest

from crm_source.handler import CRMSource
from crm_source.loop import PollingService
from crmpilot.crm import CRMAuthError, CRMUnavailable, FakeCRM
from crmpilot.crm.changes import SOURCE_OBJECTS
from crmpilot.crm.port import ChangedRecord
from crmpilot.crm.watermark import InMemoryWatermarkStore
from crmpilot.warehouse import InMemoryWarehouse


class FlakyCRM(FakeCRM):
    """Fails the first polls with the given errors, then answers."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors = list(errors)
        self.polls = 0

    def changed_since(
        self, sobject: str, fields: Sequence[str], since: datetime, *, page_size: int | None = None
    ) -> Iterator[list[ChangedRecord]]:
        self.polls += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().changed_since(sobject, fields, since, page_size=page_size)


class Sink:
    async def send_many(self, topic: str, envelopes: object) -> Sequence[object]:
        return []


def _service(crm: FakeCRM, closed: list[bool]) -> PollingService:
    source = CRMSource(
        crm=crm, store=InMemoryWatermarkStore(), feedback=InMemoryWarehouse(), sink=Sink(),
        topics={"case": "c", "email": "e", "lead": "l"}, objects=[SOURCE_OBJECTS["Case"]], source="crm://test",
    )  # fmt: skip

    async def close() -> None:
        closed.append(True)

    return PollingService(source, interval_s=0.01, max_backoff_s=0.5, close=close)


async def _serve_until(service: PollingService, crm: FlakyCRM, polls: int, readiness: list[bool] | None = None) -> int:
    task = asyncio.create_task(service.serve())
    while crm.polls < polls and not task.done():
        if readiness is not None:
            readiness.append(service.status().ready)
        await asyncio.sleep(0.01)
    service.stop()
    return await asyncio.wait_for(task, 10)


def test_a_crm_outage_is_retried_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crm_source")
    crm = FlakyCRM(CRMUnavailable("down", retry_after=0.2))
    closed: list[bool] = []
    service = _service(crm, closed)
    readiness: list[bool] = []
    assert asyncio.run(_serve_until(service, crm, polls=6, readiness=readiness)) == 0
    assert readiness[0] is False and True in readiness, "not ready while the CRM is down, ready once a poll succeeds"
    assert service.polls >= 1 and closed == [True]
    assert any("polling Case" in r.getMessage() for r in caplog.records)
    assert any("poll failed (CRMUnavailable" in r.getMessage() for r in caplog.records)


def test_bad_credentials_stop_the_service_with_exit_1() -> None:
    crm = FlakyCRM(CRMAuthError("session invalid"))
    closed: list[bool] = []
    assert asyncio.run(_serve_until(_service(crm, closed), crm, polls=99)) == 1
    assert closed == [True] and crm.polls == 1
