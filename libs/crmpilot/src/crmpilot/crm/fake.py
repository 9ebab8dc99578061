"""An in-memory CRM for unit tests of handlers: same port, same outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .port import RecordRef, RecordState, RecordUpdate, UpdateOutcome

__all__ = ["FakeCRM"]


class FakeCRM:
    """Records keyed by (sobject, id). ``restricted`` maps a field to its allowed values."""

    def __init__(self, *, user_id: str = "005000000000001AAA", restricted: Mapping[str, Sequence[str]] | None = None) -> None:
        self._user_id = user_id
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.restricted = {k: set(v) for k, v in (restricted or {}).items()}
        self.writes: list[RecordUpdate] = []

    @property
    def user_id(self) -> str:
        return self._user_id

    def put(self, sobject: str, record_id: str, *, by: str = "005000000000002AAA", at: datetime | None = None, **fields: Any) -> None:
        rec = self.records.setdefault((sobject, record_id), {})
        rec.update(fields)
        rec["LastModifiedDate"] = at or datetime.now(UTC)
        rec["LastModifiedById"] = by

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
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
        outcomes = []
        for upd in updates:
            rec = self.records.get((upd.ref.sobject, upd.ref.record_id))
            if rec is None:
                outcomes.append(UpdateOutcome(upd.ref, ok=False, code="ENTITY_IS_DELETED", message="entity is deleted"))
                continue
            bad = [f for f, v in upd.values.items() if f in self.restricted and v not in self.restricted[f]]
            if bad:
                outcomes.append(
                    UpdateOutcome(upd.ref, ok=False, code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message="bad value for restricted picklist field", fields=tuple(bad))
                )
                continue
            self.writes.append(upd)
            self.put(upd.ref.sobject, upd.ref.record_id, by=self._user_id, **upd.values)
            outcomes.append(UpdateOutcome(upd.ref, ok=True))
        return outcomes
