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
from crmpilot.warehouse import Warehouse

RESULT_PREFIX = "ai."


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
            self.warehouse.write_results(results)
        if raw:
            self.warehouse.write_raw_events(raw)
        return [1] * len(items)
