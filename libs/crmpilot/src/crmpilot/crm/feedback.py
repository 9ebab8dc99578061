"""A person overriding an AI field becomes feedback: what the AI said, what the person chose.

The CRM source hands over records a person (not the integration user) changed
that still carry one of our result ids. Which fields hold an AI answer, and
which field holds the id of the result that wrote it, is :func:`watched_fields`:
the built-in tasks' ``AI_*__c`` fields (``AI_Result_Id__c``, the summary's own
id field) and every field a declared enrichment maps an output to (its
``crm.result_id_field``). The audit log says what that result wrote into each
such field; where the record now holds something else, the person overrode it. Feedback ids are derived from
the record, field, result and the person's value, so seeing the same override
again (an overlap window, a restart) records nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from crmpilot.warehouse.records import AuditStatus, CrmAuditEntry, FeedbackEntry

from .mapping import AI_VALUE_FIELDS, id_field_for
from .port import ChangedRecord
from .values import same_value, to_audit_text

if TYPE_CHECKING:
    from crmpilot.enrichments.spec import EnrichmentSpec

__all__ = [
    "BUILT_IN",
    "FeedbackLog",
    "Watched",
    "feedback_candidates",
    "multi_select_fields",
    "overrides",
    "result_ids",
    "watched_fields",
]

Watched = Mapping[str, tuple[tuple[str, str], ...]]
"""sObject -> its AI value fields, each with the field holding the id of the result that wrote it."""


def watched_fields(enrichments: Iterable[EnrichmentSpec] = ()) -> dict[str, tuple[tuple[str, str], ...]]:
    """The built-in tasks' AI value fields, then every CRM field a declared enrichment maps an output to."""
    watched: dict[str, list[tuple[str, str]]] = {
        sobject: [(name, id_field_for(name)) for name in names] for sobject, names in AI_VALUE_FIELDS.items()
    }
    for spec in enrichments:
        if spec.crm is not None:
            pairs = watched.setdefault(spec.crm.object, [])
            pairs += [
                (name, spec.crm.result_id_field)
                for name in spec.crm.fields.values()
                if (name, spec.crm.result_id_field) not in pairs
            ]
    return {sobject: tuple(pairs) for sobject, pairs in watched.items()}


def multi_select_fields(enrichments: Iterable[EnrichmentSpec] = ()) -> frozenset[tuple[str, str]]:
    """``(sObject, field)`` of every multi-select picklist a declared enrichment writes (its ``multi_enum`` outputs):
    their values are compared as sets."""
    return frozenset(
        (spec.crm.object, crm_field)
        for spec in enrichments
        if spec.crm is not None
        for output, crm_field in spec.crm.fields.items()
        if spec.outputs[output].type == "multi_enum"
    )


BUILT_IN: Watched = watched_fields()
"""The built-in tasks' fields only."""


def result_ids(records: Sequence[ChangedRecord], watched: Watched = BUILT_IN) -> list[str]:
    """The result ids the records carry in their watched id fields (what to read from the audit)."""
    return sorted({str(r.fields[i]) for r in records for _, i in watched.get(r.ref.sobject, ()) if r.fields.get(i)})


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


def feedback_candidates(
    records: Sequence[ChangedRecord], *, integration_user: str, watched: Watched = BUILT_IN
) -> list[ChangedRecord]:
    """Records a person changed that carry one of our results in a field the AI fills."""
    return [
        r
        for r in records
        if r.last_modified_by != integration_user and any(r.fields.get(i) for _, i in watched.get(r.ref.sobject, ()))
    ]


def overrides(
    records: Sequence[ChangedRecord],
    audit: Sequence[CrmAuditEntry],
    watched: Watched = BUILT_IN,
    multi_select: Collection[tuple[str, str]] = frozenset(),
) -> list[FeedbackEntry]:
    """One feedback entry per AI value field whose current value differs from what our result wrote."""
    wrote: dict[tuple[str, str, str, str], CrmAuditEntry] = {}
    for entry in audit:  # oldest first: the latest write of a field wins
        wrote[(entry.result_id, entry.sobject, entry.record_id, entry.field)] = entry
    found: list[FeedbackEntry] = []
    for record in records:
        for name, id_field in watched.get(record.ref.sobject, ()):
            if name not in record.fields:
                continue  # not read by this poll
            result_id = str(record.fields.get(id_field))
            ours = wrote.get((result_id, record.ref.sobject, record.ref.record_id, name))
            current = record.fields.get(name)
            sets = (record.ref.sobject, name) in multi_select
            if ours is None or same_value(current, ours.after_value, multi_select=sets):
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
