"""Write one result back to the CRM, safely: batched, conditional, audited.

Results of many entities share sObject Collections calls through a
micro-batcher (up to 200 records a call). The rules (never clobber a person,
never write twice, audit before/after) live in ``crmpilot.crm.write_back``; a
record the CRM refuses is dead-lettered with the CRM's error code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crmpilot.crm import CRM, AuditLog, WriteReport, write_back
from crmpilot.crm.mapping import Result
from crmpilot.events import Envelope, EmailSummary, PoisonMessage, RequestScore, TicketClassification
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.microbatch import MicroBatcher
from crmpilot.streaming.tracing import process_span

log = logging.getLogger(__name__)

RESULT_TYPES = (TicketClassification, EmailSummary, RequestScore)


class NotAResult(PoisonMessage):
    code = "not_a_result"


@dataclass
class CRMWriter:
    crm: CRM
    audit: AuditLog
    batch_size: int = 200
    batch_delay_s: float = 0.2
    _batcher: MicroBatcher[Result, WriteReport] = field(init=False)

    def __post_init__(self) -> None:
        self._batcher = MicroBatcher(self._flush, max_size=self.batch_size, max_delay=self.batch_delay_s)

    @property
    def batches(self) -> int:
        return self._batcher.batches

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id):
            if not isinstance(envelope.data, RESULT_TYPES):
                raise NotAResult(f"{ctx.topic} carries results, got {envelope.type!r}")
            report = await self._batcher.submit(envelope.data)
            report.raise_if_rejected()
            log.info(
                "crm write",
                extra={"fields": {"result_id": report.result_id, "status": report.status, "sobject": report.sobject, "record_id": report.record_id}},
            )
        return ()

    def _flush(self, results: Sequence[Result]) -> list[WriteReport]:
        return write_back(results, self.crm, self.audit)
