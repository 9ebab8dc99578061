"""crm_writer's API call counter and daily-limit gauges; warehouse_writer's batch-size histogram and rows counter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from crm_writer.handler import CRMWriter, parse_api_usage
from crmpilot.crm import FakeCRM, RecordUpdate, UpdateOutcome
from crmpilot.events import Envelope
from crmpilot.streaming import MessageContext
from crmpilot.warehouse import InMemoryWarehouse
from tests.resultkit import classified_event
from warehouse_writer.handler import WarehouseWriter

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HUMAN = "005000000000002AAA"
CTX = MessageContext("ai.ticket.classified", 0, 1, b"k", (), EVENT_TIME, "test-group")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def result_event(case_id: str) -> Envelope[Any]:
    return classified_event(case_id, event_time=EVENT_TIME)


class UsageCRM(FakeCRM):
    """A FakeCRM that, like SalesforceCRM, reports the org's usage as ``api_usage`` after each call."""

    def __init__(self, limit: int = 5000, used: int = 10) -> None:
        super().__init__()
        self.limit, self.used = limit, used
        self.api_usage: str | None = None

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        out = super().update(updates)
        self.api_usage = f"api-usage={self.used + self.api_calls}/{self.limit}"
        return out


@pytest.mark.parametrize(
    ("usage", "parsed"),
    [
        ("api-usage=18/5000", (18, 5000)),
        ("18/5000", (18, 5000)),
        (None, None),
        ("garbage", None),
        ("api-usage=x/5000", None),
    ],
)
def test_parse_api_usage(usage: str | None, parsed: tuple[int, int] | None) -> None:
    assert parse_api_usage(usage) == parsed


def test_parse_api_usage_object() -> None:
    class ApiUsage:
        used, limit = 7, 100

    assert parse_api_usage(ApiUsage()) == (7, 100)


def test_crm_writer_counts_api_calls_and_sets_remaining_limit() -> None:
    crm = UsageCRM(limit=5000, used=10)
    ids = [f"5000000000{i:05d}AAA" for i in range(3)]
    for case_id in ids:
        crm.put("Case", case_id, by=HUMAN, at=EVENT_TIME - timedelta(minutes=5))
    writer = CRMWriter(crm, InMemoryWarehouse(), batch_size=200, batch_delay_s=0.02)
    calls_before = value("crmpilot_crm_api_calls_total")
    applied_before = value("crmpilot_crm_results_total", status="applied")

    async def go() -> list[Any]:
        return await asyncio.gather(*(writer(result_event(c), CTX) for c in ids), return_exceptions=True)

    assert asyncio.run(go()) == [(), (), ()]
    assert writer.api_calls > 0
    assert value("crmpilot_crm_api_calls_total") - calls_before == writer.api_calls
    assert value("crmpilot_crm_results_total", status="applied") - applied_before == 3
    assert value("crmpilot_crm_batches_total", outcome="ok") >= 1
    used = 10 + crm.api_calls
    assert value("crmpilot_crm_api_daily_used") == used
    assert value("crmpilot_crm_api_daily_limit") == 5000
    assert value("crmpilot_crm_api_daily_remaining") == 5000 - used


class StubWarehouse:
    """Returns rows inserted like a real warehouse: the second sight of an id adds nothing."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def _write(self, batch: Sequence[tuple[Envelope[Any], MessageContext]]) -> int:
        new = {e.id for e, _ in batch} - self.seen
        self.seen |= new
        return len(new)

    write_results = write_raw_events = _write


def raw_event(n: int) -> Envelope[Any]:
    return Envelope[Any](
        source="crmpilot/test", type="crm.case.created", schemaversion=1, subject=str(n), data={"n": n}
    )


def test_warehouse_writer_observes_batch_sizes_and_rows() -> None:
    hist = "crmpilot_warehouse_batch_records"
    res_count, res_sum = value(f"{hist}_count", kind="results"), value(f"{hist}_sum", kind="results")
    raw_count, raw_sum = value(f"{hist}_count", kind="raw"), value(f"{hist}_sum", kind="raw")
    rows_res, rows_raw = (
        value("crmpilot_warehouse_rows_written_total", kind="results"),
        value("crmpilot_warehouse_rows_written_total", kind="raw"),
    )
    le5 = value(f"{hist}_bucket", kind="results", le="5.0")

    writer = WarehouseWriter(StubWarehouse(), batch_size=500, batch_delay_s=0.02)  # type: ignore[arg-type]  # a stub with only the warehouse calls the writer makes
    results = [result_event(f"5000000000{i:05d}AAA") for i in range(4)]
    raws = [raw_event(i) for i in range(2)]

    async def go(items: list[Envelope[Any]]) -> None:
        await asyncio.gather(*(writer(e, CTX) for e in items))

    asyncio.run(go([*results, *raws]))
    asyncio.run(go(results[:1]))  # a redelivery: observed, no row written

    assert value(f"{hist}_count", kind="results") - res_count == 2
    assert value(f"{hist}_sum", kind="results") - res_sum == 5
    assert value(f"{hist}_bucket", kind="results", le="5.0") - le5 == 2
    assert value(f"{hist}_count", kind="raw") - raw_count == 1
    assert value(f"{hist}_sum", kind="raw") - raw_sum == 2
    assert value("crmpilot_warehouse_rows_written_total", kind="results") - rows_res == 4
    assert value("crmpilot_warehouse_rows_written_total", kind="raw") - rows_raw == 2
