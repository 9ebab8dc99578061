"""An in-memory store with the same behaviour as the PostgreSQL one, for unit tests.

A transaction holds a global lock and stages its writes, applying them only
when it ends without an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .store import Change, Cursor, LoggedChange, StoredRecord, StoreTransaction

__all__ = ["MemoryStore"]


@dataclass
class _State:
    records: dict[str, StoredRecord] = field(default_factory=dict)
    auto_numbers: dict[str, int] = field(default_factory=dict)
    record_numbers: int = 0
    last_replay_id: int = 0
    changes: list[LoggedChange] = field(default_factory=list)


class _MemoryTransaction:
    def __init__(self, committed: _State) -> None:
        self.staged = _State(
            dict(committed.records),
            dict(committed.auto_numbers),
            committed.record_numbers,
            committed.last_replay_id,
            list(committed.changes),
        )

    async def get(self, record_id: str) -> StoredRecord | None:
        return self.staged.records.get(record_id)

    async def put(self, record: StoredRecord) -> None:
        self.staged.records[record.id] = record

    async def next_record_number(self) -> int:
        self.staged.record_numbers += 1
        return self.staged.record_numbers

    async def next_auto_number(self, name: str) -> int:
        self.staged.auto_numbers[name] = self.staged.auto_numbers.get(name, 0) + 1
        return self.staged.auto_numbers[name]

    async def log(self, change: Change) -> None:
        self.staged.last_replay_id += 1
        self.staged.changes.append(LoggedChange(self.staged.last_replay_id, change))


class MemoryStore:
    """The store kept in this process; forgets everything when it ends."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()
        self._usage: dict[date, int] = {}
        self._cursors: dict[str, tuple[datetime, Cursor]] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self._lock:
            tx = _MemoryTransaction(self._state)
            yield tx
            self._state = tx.staged

    async def fetch(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        return {i: self._state.records[i] for i in record_ids if i in self._state.records}

    async def scan(self, sobject: str, *, include_deleted: bool) -> list[StoredRecord]:
        return [
            r
            for _, r in sorted(self._state.records.items())
            if r.sobject == sobject and (include_deleted or not r.is_deleted)
        ]

    async def count_api_call(self, day: date, limit: int) -> int | None:
        used = self._usage.get(day, 0)
        if used >= limit:
            return None
        self._usage[day] = used + 1
        return used + 1

    async def api_usage(self, day: date) -> int:
        return self._usage.get(day, 0)

    async def save_cursor(self, locator: str, cursor: Cursor, now: datetime, ttl: timedelta) -> None:
        self._cursors = {k: v for k, v in self._cursors.items() if v[0] >= now - ttl}
        self._cursors[locator] = (now, cursor)

    async def load_cursor(self, locator: str) -> Cursor | None:
        entry = self._cursors.get(locator)
        return None if entry is None else entry[1]

    async def changes(self, after: int, limit: int) -> list[LoggedChange]:
        return [c for c in self._state.changes if c.replay_id > after][:limit]

    async def reset(self) -> None:
        async with self._lock:
            self._state = _State(
                record_numbers=self._state.record_numbers,
                last_replay_id=self._state.last_replay_id,
            )
            self._usage.clear()
            self._cursors.clear()
