"""An in-memory CRM for unit tests of handlers: same ports, same outcomes, same API call counts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .port import ChangedRecord, RecordRef, RecordState, RecordUpdate, UpdateOutcome
from .salesforce import BATCH_LIMIT, READ_LIMIT

__all__ = ["FakeCRM"]


class FakeCRM:
    """Records keyed by (sobject, id). ``restricted`` maps a field to its allowed values."""

    def __init__(
        self, *, user_id: str = "005000000000001AAA", restricted: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._user_id = user_id
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.restricted = {k: set(v) for k, v in (restricted or {}).items()}
        self.writes: list[RecordUpdate] = []
        self.api_calls = 0

    @property
    def user_id(self) -> str:
        return self._user_id

    def put(
        self, sobject: str, record_id: str, *, by: str = "005000000000002AAA", at: datetime | None = None, **fields: Any
    ) -> None:
        at = at or datetime.now(UTC)
        rec = self.records.setdefault((sobject, record_id), {"CreatedDate": at})
        rec.update(fields)
        rec["LastModifiedDate"] = rec["SystemModstamp"] = at
        rec["LastModifiedById"] = by

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
        self.api_calls += math.ceil(len(ids) / READ_LIMIT)
        out = {}
        for rid in ids:
            rec = self.records.get((sobject, rid))
            if rec is not None:
                out[rid] = RecordState(
                    ref=RecordRef(sobject, rid),
                    fields={f: rec.get(f) for f in fields},
                    last_modified=rec["LastModifiedDate"],
                    last_modified_by=rec["LastModifiedById"],
                )
        return out

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        self.api_calls += math.ceil(len(updates) / BATCH_LIMIT)
        outcomes = []
        for upd in updates:
            rec = self.records.get((upd.ref.sobject, upd.ref.record_id))
            if rec is None:
                outcomes.append(UpdateOutcome(upd.ref, ok=False, code="ENTITY_IS_DELETED", message="entity is deleted"))
                continue
            bad = [f for f, v in upd.values.items() if f in self.restricted and v not in self.restricted[f]]
            if bad:
                outcomes.append(
                    UpdateOutcome(
                        upd.ref,
                        ok=False,
                        code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        message="bad value for restricted picklist field",
                        fields=tuple(bad),
                    )
                )
                continue
            self.writes.append(upd)
            self.put(upd.ref.sobject, upd.ref.record_id, by=self._user_id, **upd.values)
            outcomes.append(UpdateOutcome(upd.ref, ok=True))
        return outcomes

    def changed_since(
        self, sobject: str, fields: Sequence[str], since: datetime, *, page_size: int | None = None
    ) -> Iterator[list[ChangedRecord]]:
        found = sorted(
            (
                ChangedRecord(
                    ref=RecordRef(sobject, rid),
                    fields={f: rec.get(f) for f in fields},
                    created=rec["CreatedDate"],
                    last_modified=rec["LastModifiedDate"],
                    last_modified_by=rec["LastModifiedById"],
                    modstamp=rec["SystemModstamp"],
                )
                for (kind, rid), rec in self.records.items()
                if kind == sobject and rec["SystemModstamp"] >= since.replace(microsecond=0)
            ),
            key=lambda r: (r.modstamp, r.ref.record_id),
        )
        size = page_size or 2000
        self.api_calls += 1
        yield found[:size]
        for start in range(size, len(found), size):
            self.api_calls += 1
            yield found[start : start + size]
