"""Store events in the warehouse: results as facts with provenance, source events raw.

Writes are idempotent (result id, event id), so a redelivered record changes
nothing. Records are gathered into batches by a micro-batcher: one multi-row
upsert per batch, whatever the number of keys and partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crmpilot.events import Envelope
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.microbatch import MicroBatcher
from crmpilot.streaming.tracing import process_span
from crmpilot.telemetry import metrics as prom
from crmpilot.warehouse import Warehouse

RESULT_PREFIX = "ai."

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2000, 5000)
BATCH_RECORDS = prom.histogram(
    "crmpilot_warehouse_batch_records",
    "Records per warehouse write batch; kind = results or raw",
    ("kind",),
    buckets=BATCH_SIZE_BUCKETS,
)
ROWS_WRITTEN = prom.counter(
    "crmpilot_warehouse_rows_written",
    "Rows the warehouse inserted (a redelivered record adds none); kind = results or raw",
    ("kind",),
)


@dataclass
class WarehouseWriter:
    warehouse: Warehouse
    batch_size: int = 500
    batch_delay_s: float = 0.2
    _batcher: MicroBatcher[tuple[Envelope[Any], MessageContext], int] = field(init=False)

    def __post_init__(self) -> None:
        self._batcher = MicroBatcher(self._flush, max_size=self.batch_size, max_delay=self.batch_delay_s)

    @property
    def batches(self) -> int:
        return self._batcher.batches

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id):
            await self._batcher.submit((envelope, ctx))
        return ()

    def _flush(self, items: Sequence[tuple[Envelope[Any], MessageContext]]) -> list[int]:
        results = [item for item in items if item[0].type.startswith(RESULT_PREFIX)]
        raw = [item for item in items if not item[0].type.startswith(RESULT_PREFIX)]
        if results:
            BATCH_RECORDS.labels("results").observe(len(results))
            ROWS_WRITTEN.labels("results").inc(self.warehouse.write_results(results) or 0)
        if raw:
            BATCH_RECORDS.labels("raw").observe(len(raw))
            ROWS_WRITTEN.labels("raw").inc(self.warehouse.write_raw_events(raw) or 0)
        return [1] * len(items)
