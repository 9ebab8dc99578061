"""A person overriding an AI field becomes feedback: what the AI said, what the person chose.

The CRM source hands over records a person (not the integration user) changed
that still carry one of our result ids (``AI_Result_Id__c``). The audit log
says what that result wrote into each AI value field; where the record now
holds something else, the person overrode it. Feedback ids are derived from
the record, field, result and the person's value, so seeing the same override
again (an overlap window, a restart) records nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from crmpilot.warehouse.records import AuditStatus, CrmAuditEntry, FeedbackEntry

from .mapping import AI_VALUE_FIELDS, RESULT_ID_FIELDS, id_field_for
from .port import ChangedRecord
from .values import same_value, to_audit_text

__all__ = ["FeedbackLog", "overrides", "feedback_candidates"]


class FeedbackLog(Protocol):
    """Reads the audit, records feedback (``PostgresWarehouse`` satisfies it)."""

    def crm_audit(
        self,
        *,
        since: datetime | None = None,
        run_id: str | None = None,
        result_ids: Sequence[str] | None = None,
        statuses: Sequence[AuditStatus] = ("applied",),
    ) -> list[CrmAuditEntry]: ...

    def record_feedback(self, entries: Sequence[FeedbackEntry]) -> int: ...


def feedback_candidates(records: Sequence[ChangedRecord], *, integration_user: str) -> list[ChangedRecord]:
    """Records a person changed that carry one of our results in a field the AI fills."""
    return [
        r
        for r in records
        if r.last_modified_by != integration_user
        and any(r.fields.get(f) for f in RESULT_ID_FIELDS)
        and r.ref.sobject in AI_VALUE_FIELDS
    ]


def overrides(records: Sequence[ChangedRecord], audit: Sequence[CrmAuditEntry]) -> list[FeedbackEntry]:
    """One feedback entry per AI value field whose current value differs from what our result wrote."""
    wrote: dict[tuple[str, str, str, str], CrmAuditEntry] = {}
    for entry in audit:  # oldest first: the latest write of a field wins
        wrote[(entry.result_id, entry.sobject, entry.record_id, entry.field)] = entry
    found: list[FeedbackEntry] = []
    for record in records:
        for name in AI_VALUE_FIELDS[record.ref.sobject]:
            result_id = str(record.fields.get(id_field_for(name)))
            ours = wrote.get((result_id, record.ref.sobject, record.ref.record_id, name))
            current = record.fields.get(name)
            if ours is None or same_value(current, ours.after_value):
                continue
            human = to_audit_text(current)
            key = f"{record.ref.sobject}|{record.ref.record_id}|{name}|{result_id}|{human}"
            found.append(
                FeedbackEntry(
                    event_id=hashlib.sha256(key.encode()).hexdigest()[:32],
                    sobject=record.ref.sobject,
                    record_id=record.ref.record_id,
                    field=name,
                    ai_value=ours.after_value,
                    human_value=human,
                    changed_at=record.last_modified,
                    changed_by=record.last_modified_by,
                    result_id=result_id,
                )
            )
    return found
