"""One poll of the CRM: changed records in, ``crm.*`` events and feedback out, watermark saved.

For each polled object, page by page (oldest change first): drop what was
already handled (:func:`crmpilot.crm.changes.classify`), produce the events
keyed by record id and wait for the broker's acknowledgement, record human
overrides of AI fields as feedback, then save the watermark and what was seen
in one transaction. A crash between the acknowledgement and the save re-emits
that page on restart with the same event ids (at-least-once, never a gap).
A declared object (an enrichment spec's ``crm.object``, kind ``record``) is
polled the same way; its events go to each of its topics that accepts their
type. A person's override of any watched field (a built-in ``AI_*__c`` field or
a field a declared enrichment writes, :func:`crmpilot.crm.feedback.watched_fields`)
is feedback, whatever object carries it.
The CRM, the store and the warehouse are blocking adapters, run in threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from crmpilot.crm.changes import EventKind, SourceObject, classify, event_for
from crmpilot.crm.feedback import BUILT_IN, FeedbackLog, Watched, feedback_candidates, overrides, result_ids
from crmpilot.crm.port import ChangedRecord, ChangeFeed
from crmpilot.crm.watermark import SeenRecord, Watermark, WatermarkStore
from crmpilot.events import Envelope


class EventSink(Protocol):
    """Produces envelopes keyed by subject; returns once all are acknowledged (``EventProducer`` satisfies it)."""

    async def send_many(self, topic: str, envelopes: Iterable[Envelope[Any]]) -> Sequence[object]: ...


@dataclass
class PollStats:
    read: int = 0
    emitted: int = 0
    own_writes: int = 0
    duplicates: int = 0
    feedback: int = 0
    pages: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CRMSource:
    crm: ChangeFeed
    store: WatermarkStore
    feedback: FeedbackLog
    sink: EventSink
    topics: Mapping[EventKind, str]
    objects: Sequence[SourceObject]
    source: str
    overlap: timedelta = timedelta(minutes=2)
    initial_lookback: timedelta = timedelta(days=1)
    page_size: int | None = None
    clock: Callable[[], datetime] = field(default=_utcnow)
    watched: Watched = field(default_factory=lambda: BUILT_IN)
    """The AI value fields whose override by a person is feedback (built-in and declared)."""
    multi_select: frozenset[tuple[str, str]] = frozenset()
    """``(sObject, field)`` of the multi-select picklists among them: compared as sets of values."""

    async def poll_once(self, stop: asyncio.Event | None = None) -> dict[str, PollStats]:
        """Poll every object once; between pages, return early when ``stop`` is set."""
        stats: dict[str, PollStats] = {}
        for spec in self.objects:
            if stop is not None and stop.is_set():
                break
            stats[spec.state_key] = await self._poll(spec, stop)
        return stats

    async def _poll(self, spec: SourceObject, stop: asyncio.Event | None) -> PollStats:
        stats = PollStats()
        mark = await asyncio.to_thread(self.store.load, self.source, spec.state_key)
        if mark is None:
            start = self.clock() - self.initial_lookback
            mark = Watermark(start, start)
        pages = self.crm.changed_since(spec.sobject, spec.fields, mark.at - self.overlap, page_size=self.page_size)
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            mark = await self._handle(spec, page, mark, stats)
            if stop is not None and stop.is_set():
                break
        return stats

    async def _handle(
        self, spec: SourceObject, page: list[ChangedRecord], mark: Watermark, stats: PollStats
    ) -> Watermark:
        stats.pages += 1
        stats.read += len(page)
        prior = await asyncio.to_thread(self.store.seen, self.source, spec.state_key, [r.ref.record_id for r in page])
        seen: list[SeenRecord] = []
        fresh: list[ChangedRecord] = []
        events: list[Envelope[Any]] = []
        for record in page:
            change, digests = classify(
                record,
                prior.get(record.ref.record_id),
                spec,
                integration_user=self.crm.user_id,
                started_at=mark.started_at,
            )
            if digests is None:
                stats.duplicates += 1
                continue
            fresh.append(record)
            seen.append(SeenRecord(record.ref.record_id, record.modstamp, digests))
            if change is None:
                stats.own_writes += 1
                continue
            event = event_for(change, spec, source=self.source)
            if event is not None:
                events.append(event)
        if events:
            sent: set[str] = set()
            for topic, batch in spec.by_topic(events, None if spec.routes else self.topics[spec.kind]).items():
                await self.sink.send_many(topic, batch)
                sent.update(e.id for e in batch)
            stats.emitted += len(sent)
        stats.feedback += await self._record_feedback(fresh)
        moved = Watermark(max([mark.at, *(r.modstamp for r in page)]), mark.started_at)
        await asyncio.to_thread(self.store.save, self.source, spec.state_key, moved, seen)
        return moved

    async def _record_feedback(self, records: list[ChangedRecord]) -> int:
        candidates = feedback_candidates(records, integration_user=self.crm.user_id, watched=self.watched)
        if not candidates:
            return 0
        audit = await asyncio.to_thread(self.feedback.crm_audit, result_ids=result_ids(candidates, self.watched))
        found = overrides(candidates, audit, self.watched, self.multi_select)
        return await asyncio.to_thread(self.feedback.record_feedback, found) if found else 0
