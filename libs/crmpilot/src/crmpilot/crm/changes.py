"""CRM changes → ``crm.*`` events: which records become which events, and which fields changed.

A poll reads records changed since a watermark; for each record this module
decides, from what was seen of it before (:class:`~crmpilot.crm.watermark.SeenRecord`):

- a **duplicate** (same or older ``SystemModstamp`` than already handled): nothing;
- **created** when never seen and created since the source began, else **updated**;
- the **changed fields**: tracked fields whose value digest differs from the last
  seen one (unknown, so empty, for a record seen for the first time);
- **our own write-back** (last modified by the integration user): no event, so
  enrichment never loops, unless fields we never write changed too (a person's
  edit that our later write-back masked), which are then reported alone.

Events: a Case becomes ``crm.case.created`` / ``crm.case.updated``; a new
incoming EmailMessage ``crm.email.received``; a new Lead ``erp.request.submitted``
(kind ``lead``). Event ids are derived from the record and its stamp, so a
change emitted twice (at-least-once) carries the same id and every downstream
idempotency key (result id, LLM cache) absorbs it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from crmpilot.events import CaseEvent, EmailReceived, Envelope, RequestSubmitted

from .mapping import MANAGED_FIELDS, RESULT_ID_FIELD, SUMMARY_RESULT_ID_FIELD
from .port import ChangedRecord
from .watermark import SeenRecord

__all__ = ["EventKind", "SourceObject", "SOURCE_OBJECTS", "Change", "classify", "digests", "event_for", "event_id"]

EventKind = Literal["case", "email", "lead"]
_NAMESPACE = uuid.UUID("6f1c7c55-2f0e-4d5e-9a59-3c1c6f0a8b21")
_TEXT_MAX = 32_000


@dataclass(frozen=True, slots=True)
class SourceObject:
    """A polled sObject: the fields read, those diffed, and which events it yields."""

    sobject: str
    kind: EventKind
    fields: tuple[str, ...]
    tracked: tuple[str, ...]
    build: Callable[[ChangedRecord, Change], tuple[str, BaseModel] | None]
    """The event type and payload for a change, or None when the change yields no event."""


@dataclass(frozen=True, slots=True)
class Change:
    record: ChangedRecord
    created: bool
    changed_fields: tuple[str, ...]
    digests: Mapping[str, str]


def digests(record: ChangedRecord, tracked: Sequence[str]) -> dict[str, str]:
    """A short digest of each tracked field's value (the seen-state keeps digests, not customer text)."""
    return {
        f: hashlib.sha256(json.dumps(record.fields.get(f), default=str).encode()).hexdigest()[:16] for f in tracked
    }


def classify(
    record: ChangedRecord, prior: SeenRecord | None, spec: SourceObject, *, integration_user: str, started_at: datetime
) -> tuple[Change | None, Mapping[str, str] | None]:
    """The change to emit (or None), and the digests to remember (None for a duplicate)."""
    if prior is not None and prior.modstamp >= record.modstamp:
        return None, None
    now = digests(record, spec.tracked)
    changed = () if prior is None else tuple(f for f in spec.tracked if prior.digests.get(f) != now[f])
    if record.last_modified_by == integration_user:
        managed = set(MANAGED_FIELDS.get(spec.sobject, ()))
        others = tuple(f for f in changed if f not in managed)
        if not others:
            return None, now
        changed = others
    created = prior is None and record.created >= started_at
    return Change(record, created, changed, now), now


def event_id(source: str, record: ChangedRecord) -> str:
    key = f"{source}|{record.ref.sobject}|{record.ref.record_id}|{record.modstamp.isoformat()}"
    return str(uuid.uuid5(_NAMESPACE, key))


def event_for(change: Change, spec: SourceObject, *, source: str) -> Envelope[Any] | None:
    built = spec.build(change.record, change)
    if built is None:
        return None
    event_type, data = built
    record = change.record
    return Envelope[Any](
        id=event_id(source, record),
        source=source,
        type=event_type,
        schemaversion=1,
        subject=record.ref.record_id,
        time=record.last_modified,
        data=data,
    )


def _text(value: Any, limit: int = _TEXT_MAX) -> str:
    return "" if value is None else str(value)[:limit]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _case(record: ChangedRecord, change: Change) -> tuple[str, BaseModel]:
    f = record.fields
    data = CaseEvent(
        case_id=record.ref.record_id,
        subject=_text(f.get("Subject"), 255),
        description=_text(f.get("Description")),
        origin=f.get("Origin"),
        account_id=f.get("AccountId"),
        contact_email=f.get("SuppliedEmail"),
        changed_fields=() if change.created else change.changed_fields,
        last_modified=record.last_modified,
    )
    return ("crm.case.created" if change.created else "crm.case.updated"), data


def _email(record: ChangedRecord, change: Change) -> tuple[str, BaseModel] | None:
    f = record.fields
    if not change.created or not f.get("Incoming"):
        return None
    data = EmailReceived(
        email_id=record.ref.record_id,
        case_id=f.get("ParentId"),
        from_address=_text(f.get("FromAddress"), 254),
        to_address=_text(f.get("ToAddress"), 1000),
        subject=_text(f.get("Subject"), 998),
        body=_text(f.get("TextBody")),
        received_at=_when(f.get("MessageDate")) or record.created,
    )
    return "crm.email.received", data


def _lead(record: ChangedRecord, change: Change) -> tuple[str, BaseModel] | None:
    if not change.created:
        return None
    f = record.fields
    about = [f"{label}: {f[name]}" for name, label in _LEAD_CONTEXT if f.get(name) not in (None, "")]
    description = "\n".join([*about, _text(f.get("Description"))]).strip()
    employees = f.get("NumberOfEmployees")
    data = RequestSubmitted(
        request_id=record.ref.record_id,
        kind="lead",
        company=_text(f.get("Company"), 255),
        contact_email=f.get("Email"),
        country=f.get("Country"),
        employees=int(employees) if employees is not None else None,
        amount=None,
        description=description[:_TEXT_MAX],
    )
    return "erp.request.submitted", data


_LEAD_CONTEXT = (("Title", "Title"), ("Industry", "Industry"), ("LeadSource", "Lead source"), ("AnnualRevenue", "Annual revenue"))

_CASE_FIELDS = ("Subject", "Description", "Origin", "AccountId", "SuppliedEmail", "Status", "Priority", "Type")
_AI_CASE = ("AI_Category__c", "AI_Priority__c", "AI_Sentiment__c", "AI_Summary__c", RESULT_ID_FIELD, SUMMARY_RESULT_ID_FIELD)
_EMAIL_FIELDS = ("ParentId", "Subject", "TextBody", "FromAddress", "ToAddress", "Incoming", "MessageDate")
_LEAD_FIELDS = (
    "Company", "Email", "Country", "NumberOfEmployees", "AnnualRevenue", "Title", "Industry", "LeadSource",
    "Description", "Status",
)  # fmt: skip
_AI_LEAD = ("AI_Score__c", RESULT_ID_FIELD)

SOURCE_OBJECTS: dict[str, SourceObject] = {
    "Case": SourceObject("Case", "case", (*_CASE_FIELDS, *_AI_CASE), (*_CASE_FIELDS, *_AI_CASE), _case),
    "EmailMessage": SourceObject("EmailMessage", "email", _EMAIL_FIELDS, ("Subject", "TextBody"), _email),
    "Lead": SourceObject("Lead", "lead", (*_LEAD_FIELDS, *_AI_LEAD), (*_LEAD_FIELDS, *_AI_LEAD), _lead),
}
"""What the source can poll, by sObject name."""
