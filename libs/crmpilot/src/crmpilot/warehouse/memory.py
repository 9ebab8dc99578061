"""An in-memory :class:`~crmpilot.warehouse.Warehouse` for unit tests of handlers.

It stores the same rows as the PostgreSQL adapter (built by :mod:`.rows`) with
the same idempotency keys, so a test can assert "one fact row with this
category" without a database. Set ``unavailable = True`` to make every call
raise :class:`WarehouseUnavailable`, as during a database outage.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .errors import WarehouseUnavailable
from .records import AuditStatus, CrmAuditEntry, DlqEntry, FeedbackEntry
from .rows import FACT_TABLES, fact_row, raw_event_row
from .writer import EventBatch

__all__ = ["InMemoryWarehouse"]


class InMemoryWarehouse:
    """The fake warehouse. Rows are dicts keyed like the real tables' unique keys."""

    def __init__(self) -> None:
        self.unavailable = False
        self.facts: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in FACT_TABLES}
        self.raw_events: dict[str, dict[str, Any]] = {}
        self.audit: list[CrmAuditEntry] = []
        self.dlq: dict[tuple[str, str, int, int], DlqEntry] = {}
        self.feedback: dict[str, FeedbackEntry] = {}
        self._lock = threading.Lock()

    def write_results(self, batch: EventBatch) -> int:
        rows = [fact_row(envelope, position) for envelope, position in batch]
        with self._available():
            return sum(self._add(self.facts[table], row["result_id"], row) for table, row in rows)

    def write_raw_events(self, batch: EventBatch) -> int:
        rows = [raw_event_row(envelope, position) for envelope, position in batch]
        with self._available():
            return sum(self._add(self.raw_events, row["event_id"], row) for row in rows)

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int:
        with self._available():
            for entry in entries:
                applied_at = entry.applied_at or datetime.now(UTC)
                self.audit.append(replace(entry, id=len(self.audit) + 1, applied_at=applied_at))
            return len(entries)

    def record_dlq(self, entries: Sequence[DlqEntry]) -> int:
        with self._available():
            return sum(self._add(self.dlq, (e.consumer_group, e.topic, e.partition, e.offset), e) for e in entries)

    def record_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        with self._available():
            return sum(self._add(self.feedback, e.event_id, e) for e in entries)

    def crm_audit(
        self,
        *,
        since: datetime | None = None,
        run_id: str | None = None,
        result_ids: Sequence[str] | None = None,
        statuses: Sequence[AuditStatus] = ("applied",),
    ) -> list[CrmAuditEntry]:
        with self._available():
            found = [
                e
                for e in self.audit
                if e.status in statuses
                and (since is None or (e.applied_at is not None and e.applied_at >= since))
                and (run_id is None or e.run_id == run_id)
                and (result_ids is None or e.result_id in result_ids)
            ]
        return sorted(found, key=lambda e: (e.applied_at, e.id))

    def mark_reverted(self, audit_ids: Sequence[int], *, at: datetime | None = None) -> int:
        wanted = set(audit_ids)
        changed = 0
        with self._available():
            for i, entry in enumerate(self.audit):
                if entry.id in wanted and entry.status == "applied":
                    self.audit[i] = replace(entry, status="reverted", reverted_at=at or datetime.now(UTC))
                    changed += 1
        return changed

    def _available(self) -> threading.Lock:
        if self.unavailable:
            raise WarehouseUnavailable("in-memory warehouse set unavailable")
        return self._lock

    @staticmethod
    def _add(table: dict[Any, Any], key: Any, value: Any) -> int:
        if key in table:
            return 0
        table[key] = value
        return 1
