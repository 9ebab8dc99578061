"""Write one result back to the CRM, safely: batched, conditional, audited, within the API budget.

Results of many entities share API calls through a micro-batcher: a batch of
up to ``batch_size`` results costs one read per 800 records and one sObject
Collections update per 200. The rules (never clobber a person, never write
twice, audit before/after) live in ``crmpilot.crm.write_back``; a record the
CRM refuses is dead-lettered with the CRM's error code.

API budget: every batch logs its API calls and the running figure of calls per
1,000 updated records. When the CRM answers REQUEST_LIMIT_EXCEEDED, writes
pause for ``limit_pause_s``: until then every result fails fast with
:class:`CRMLimitExceeded` carrying the time left as ``retry_after``, so the
runtime holds it (no API call spent) and retries it when the pause ends.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmpilot.crm import CRM, AuditLog, CRMLimitExceeded, WriteReport, write_back
from crmpilot.crm.mapping import Result, UnknownEnrichmentResult
from crmpilot.enrichments.spec import EnrichmentSpec
from crmpilot.events import EmailSummary, EnrichmentResult, Envelope, PoisonMessage, TicketClassification
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.microbatch import MicroBatcher
from crmpilot.streaming.tracing import process_span
from crmpilot.telemetry import metrics as prom

log = logging.getLogger(__name__)

RESULT_TYPES = (TicketClassification, EmailSummary, EnrichmentResult)

API_CALLS = prom.counter("crmpilot_crm_api_calls", "CRM API calls spent by write-back batches")
BATCHES = prom.counter(
    "crmpilot_crm_batches", "Write-back batches run; outcome = ok or the error's class name", ("outcome",)
)
RECORDS = prom.counter(
    "crmpilot_crm_results", "Results of write-back batches by report status (applied, skipped...)", ("status",)
)
API_USED = prom.gauge("crmpilot_crm_api_daily_used", "The org's API requests used today, as the CRM last reported")
API_LIMIT = prom.gauge("crmpilot_crm_api_daily_limit", "The org's daily API request limit, as the CRM last reported")
API_REMAINING = prom.gauge(
    "crmpilot_crm_api_daily_remaining", "The org's API requests left today (limit - used), as the CRM last reported"
)


def parse_api_usage(usage: object) -> tuple[int, int] | None:
    """``(used, limit)`` from an adapter's ``api_usage``: an object with ``used``/``limit``, or text like
    ``api-usage=18/5000``."""
    if usage is None:
        return None
    used, limit = getattr(usage, "used", None), getattr(usage, "limit", None)
    if isinstance(used, int) and isinstance(limit, int):
        return used, limit
    text = str(usage).strip()
    _, _, figures = text.rpartition("=")
    a, sep, b = figures.partition("/")
    try:
        return (int(a), int(b)) if sep else None
    except ValueError:
        return None


def record_api_usage(crm: object) -> None:
    """Set the daily-limit gauges from the adapter's ``api_usage``, when it has one (Salesforce does; fakes may not)."""
    parsed = parse_api_usage(getattr(crm, "api_usage", None))
    if parsed is None:
        return
    used, limit = parsed
    API_USED.set(used)
    API_LIMIT.set(limit)
    API_REMAINING.set(max(0, limit - used))


class NotAResult(PoisonMessage):
    code = "not_a_result"


class InvalidRecordId(PoisonMessage):
    code = "invalid_record_id"


_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


@dataclass
class CRMWriter:
    crm: CRM
    audit: AuditLog
    batch_size: int = 200
    batch_delay_s: float = 0.2
    run_id: str | None = None
    limit_pause_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    enrichments: Mapping[str, EnrichmentSpec] = field(default_factory=dict)
    """The declared enrichments by name: where their results go (from the registry)."""
    api_calls: int = field(default=0, init=False)
    """API calls spent by write-back batches so far."""
    updates: int = field(default=0, init=False)
    """Records updated (results applied) so far."""
    _batcher: MicroBatcher[Result, WriteReport] = field(init=False)
    _paused_until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._batcher = MicroBatcher(self._flush, max_size=self.batch_size, max_delay=self.batch_delay_s)

    @property
    def batches(self) -> int:
        return self._batcher.batches

    @property
    def api_calls_per_1000_updates(self) -> float | None:
        return None if not self.updates else 1000 * self.api_calls / self.updates

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id):
            if not isinstance(envelope.data, RESULT_TYPES):
                raise NotAResult(f"{ctx.topic} carries results, got {envelope.type!r}")
            if isinstance(envelope.data, EnrichmentResult):
                self._check_declared(envelope.data)
            self._raise_if_paused()
            try:
                report = await self._batcher.submit(envelope.data)
            except CRMLimitExceeded as exc:
                self._pause(exc.retry_after or self.limit_pause_s)
                raise
            report.raise_if_rejected()
            log.info(
                "crm write",
                extra={
                    "fields": {
                        "result_id": report.result_id,
                        "status": report.status,
                        "sobject": report.sobject,
                        "record_id": report.record_id,
                    }
                },
            )
        return ()

    def _check_declared(self, result: EnrichmentResult) -> None:
        """Refuse, for this record alone, what would make the whole batch's CRM read fail: an unknown spec, a
        malformed id."""
        if result.task not in self.enrichments:
            raise UnknownEnrichmentResult(
                f"no enrichment spec {result.task!r} is registered with this writer; known: "
                f"{', '.join(self.enrichments) or 'none'}"
            )
        if (
            result.skipped is None
            and self.enrichments[result.task].crm is not None
            and not _SALESFORCE_ID.fullmatch(result.record_id)
        ):
            raise InvalidRecordId(
                f"{result.task}: {result.record_id[:40]!r} is not a CRM record id (15 or 18 letters and digits)"
            )

    def _raise_if_paused(self) -> None:
        left = self._paused_until - self.clock()
        if left > 0:
            raise CRMLimitExceeded(
                f"CRM writes paused for {left:.0f}s more: the org's API limit was reached",
                code="REQUEST_LIMIT_EXCEEDED",
                retry_after=left,
            )

    def _pause(self, seconds: float) -> None:
        now = self.clock()
        if self._paused_until <= now:  # the first result of the batch to see the error says it once
            log.warning(
                "CRM API limit reached: writes paused for %.0fs", seconds, extra={"fields": {"pause_s": seconds}}
            )
        self._paused_until = max(self._paused_until, now + seconds)

    def _flush(self, results: Sequence[Result]) -> list[WriteReport]:
        # One batch at a time: its calls are counted exactly, and a batch queued
        # behind one that hit the API limit fails fast instead of spending a call.
        with self._lock:
            self._raise_if_paused()
            before = self.crm.api_calls
            outcome = "ok"
            try:
                reports = write_back(results, self.crm, self.audit, run_id=self.run_id, enrichments=self.enrichments)
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                calls = self.crm.api_calls - before
                self.api_calls += calls
                API_CALLS.inc(max(0, calls))
                BATCHES.labels(outcome).inc()
                record_api_usage(self.crm)
            for report in reports:
                RECORDS.labels(report.status).inc()
            applied = sum(r.status == "applied" for r in reports)
            self.updates += applied
            per_1000 = self.api_calls_per_1000_updates
        log.info(
            "crm batch",
            extra={
                "fields": {
                    "results": len(results),
                    "applied": applied,
                    "api_calls": calls,
                    "api_calls_per_1000_updates": None if per_1000 is None else round(per_1000, 2),
                    "run_id": self.run_id,
                }
            },
        )
        return reports
