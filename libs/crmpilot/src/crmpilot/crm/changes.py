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

Declared objects (:func:`record_sources`): every ``crm.object`` of an enrichment
spec that reads ``crm.record.*`` events is polled the same way and becomes
``crm.record.created`` / ``crm.record.updated`` (:class:`~crmpilot.events.RecordChanged`)
on the specs' first source topics (only the event types a topic's specs accept).
One poll per object, whatever the number of specs on it; the event carries every
field a spec on it reads (``fields.X`` inputs, ``rerun_on``); its managed fields
are every field a spec on it writes (plus the built-in ones of
:data:`~crmpilot.crm.mapping.MANAGED_FIELDS`), so no spec's write-back triggers
any spec on the object.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel

from crmpilot.enrichments.spec import EnrichmentSpec
from crmpilot.events import CaseEvent, EmailReceived, Envelope, RecordChanged, RequestSubmitted

from .mapping import MANAGED_FIELDS, RESULT_ID_FIELD, SUMMARY_RESULT_ID_FIELD
from .port import ChangedRecord
from .watermark import SeenRecord

__all__ = [
    "EventKind",
    "SourceObject",
    "SOURCE_OBJECTS",
    "RECORD_EVENT_TYPES",
    "RecordPlan",
    "Route",
    "Change",
    "classify",
    "digests",
    "event_for",
    "event_id",
    "record_sources",
]

EventKind = Literal["case", "email", "lead", "record"]
_NAMESPACE = uuid.UUID("6f1c7c55-2f0e-4d5e-9a59-3c1c6f0a8b21")
_TEXT_MAX = 32_000


@dataclass(frozen=True, slots=True)
class Route:
    """A topic a declared object's events go to, and the event types its specs accept there (others would be
    dead-lettered)."""

    topic: str
    event_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceObject:
    """A polled sObject: the fields read, those diffed, and which events it yields."""

    sobject: str
    kind: EventKind
    fields: tuple[str, ...]
    tracked: tuple[str, ...]
    build: Callable[[ChangedRecord, Change], tuple[str, BaseModel] | None]
    """The event type and payload for a change, or None when the change yields no event."""
    routes: tuple[Route, ...] = ()
    """Where the events go; empty (the built-in objects): all to the source's topic for ``kind``."""
    managed: tuple[str, ...] | None = None
    """Fields only crmpilot writes; None (the built-in objects): ``MANAGED_FIELDS`` of the sObject."""
    key: str | None = None
    """Names the stored watermark, seen records and event ids; None (the built-in objects): the sObject."""
    enrichments: tuple[str, ...] = ()
    """Declared objects: the specs whose events this poll produces."""

    @property
    def state_key(self) -> str:
        return self.key or self.sobject

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(r.topic for r in self.routes)

    def by_topic(self, events: Sequence[Envelope[Any]], default: str | None) -> dict[str, list[Envelope[Any]]]:
        """The events to send to each topic: all to ``default`` without routes, else those of the types each route
        accepts."""
        if not self.routes:
            return {default: list(events)} if default is not None and events else {}
        batches = {r.topic: [e for e in events if e.type in r.event_types] for r in self.routes}
        return {topic: batch for topic, batch in batches.items() if batch}


@dataclass(frozen=True, slots=True)
class Change:
    record: ChangedRecord
    created: bool
    changed_fields: tuple[str, ...]
    digests: Mapping[str, str]


def digests(record: ChangedRecord, tracked: Sequence[str]) -> dict[str, str]:
    """A short digest of each tracked field's value (the seen-state keeps digests, not customer text)."""
    return {f: hashlib.sha256(json.dumps(record.fields.get(f), default=str).encode()).hexdigest()[:16] for f in tracked}


def classify(
    record: ChangedRecord, prior: SeenRecord | None, spec: SourceObject, *, integration_user: str, started_at: datetime
) -> tuple[Change | None, Mapping[str, str] | None]:
    """The change to emit (or None), and the digests to remember (None for a duplicate)."""
    if prior is not None and prior.modstamp >= record.modstamp:
        return None, None
    now = digests(record, spec.tracked)
    changed = () if prior is None else tuple(f for f in spec.tracked if prior.digests.get(f) != now[f])
    if record.last_modified_by == integration_user:
        managed = set(MANAGED_FIELDS.get(spec.sobject, ()) if spec.managed is None else spec.managed)
        others = tuple(f for f in changed if f not in managed)
        if not others:
            return None, now
        changed = others
    created = prior is None and record.created >= started_at
    return Change(record, created, changed, now), now


def event_id(source: str, record: ChangedRecord, *, key: str | None = None) -> str:
    """``key``: the polled object's state key when it is not the sObject (a declared object)."""
    name = f"{source}|{key or record.ref.sobject}|{record.ref.record_id}|{record.modstamp.isoformat()}"
    return str(uuid.uuid5(_NAMESPACE, name))


def event_for(change: Change, spec: SourceObject, *, source: str) -> Envelope[Any] | None:
    built = spec.build(change.record, change)
    if built is None:
        return None
    event_type, data = built
    record = change.record
    return Envelope[Any](
        id=event_id(source, record, key=spec.key),
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


_LEAD_CONTEXT = (
    ("Title", "Title"),
    ("Industry", "Industry"),
    ("LeadSource", "Lead source"),
    ("AnnualRevenue", "Annual revenue"),
)

_CASE_FIELDS = ("Subject", "Description", "Origin", "AccountId", "SuppliedEmail", "Status", "Priority", "Type")
_AI_CASE = (
    "AI_Category__c",
    "AI_Priority__c",
    "AI_Sentiment__c",
    "AI_Summary__c",
    RESULT_ID_FIELD,
    SUMMARY_RESULT_ID_FIELD,
)
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


# -- declared objects: what the enrichment specs read as crm.record.* events ------------------

RECORD_EVENT_TYPES = ("crm.record.created", "crm.record.updated")
RECORD_KEY_PREFIX = "record:"
"""Declared objects keep their watermark under ``record:<Object>``: apart from a built-in poll of the same object."""
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_RECORD_ATTRIBUTES = frozenset(RecordChanged.model_fields) - {"fields"}


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """What :func:`record_sources` makes of the specs: the objects to poll, and the specs left out (name, why)."""

    objects: tuple[SourceObject, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass
class _Declared:
    sobject: str
    read: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    routes: dict[str, list[str]] = field(default_factory=dict)
    enrichments: list[str] = field(default_factory=list)


def _add(names: list[str], *new: str) -> None:
    """Append, once each: Salesforce field names are case-insensitive (a field twice is a SOQL error)."""
    known = {n.lower() for n in names}
    for name in new:
        if name.lower() not in known:
            known.add(name.lower())
            names.append(name)


def _reads(spec: EnrichmentSpec) -> tuple[list[str], str | None]:
    """The CRM fields a record spec reads (``fields.X`` paths of its inputs, key, record id and filters, ``rerun_on``),
    or why it cannot be polled."""
    assert spec.crm is not None
    paths = [
        *((f"inputs.{n}", i.path) for n, i in spec.inputs.items()),
        ("source.key", spec.source.key),
        ("crm.record_id", spec.crm.record_id),
        *(("source.where", path) for path in spec.source.where),
        *(("crm.where", path) for path in spec.crm.where),
    ]
    read: list[str] = []
    for where, path in paths:
        head, *rest = path.split(".")
        if head == "fields" and len(rest) == 1 and _API_NAME.match(rest[0]):
            _add(read, rest[0])
        elif not (head in _RECORD_ATTRIBUTES and not rest):
            return [], (
                f"{where} reads {path}: a crm.record.* event holds fields.<API name> "
                f"and {', '.join(sorted(_RECORD_ATTRIBUTES))}"
            )
    for name in spec.source.rerun_on:
        if not _API_NAME.match(name):
            return [], f"source.rerun_on {name!r} is not a CRM field API name"
        _add(read, name)
    return read, None


def record_sources(specs: Iterable[EnrichmentSpec]) -> RecordPlan:
    """The declared objects to poll: the ``crm.object`` of each spec that accepts a ``crm.record.*`` event type.

    Specs on one object share its poll: the event carries every field any of them
    reads and goes to each one's first source topic (once per topic, if a spec
    there accepts its type). A spec without ``crm`` names no object and is
    skipped (with the reason), as is one reading a path a ``RecordChanged``
    cannot hold.
    """
    declared: dict[str, _Declared] = {}
    skipped: list[tuple[str, str]] = []
    specs = list(specs)
    written_by_any: dict[str, list[str]] = {}  # whatever its source: our own write-back is never a change
    for spec in specs:
        if spec.crm is not None:
            _add(written_by_any.setdefault(spec.crm.object.lower(), []), *spec.crm.written_fields)
    for spec in specs:
        accepted = [t for t in spec.source.event_types if t in RECORD_EVENT_TYPES]
        if not accepted:
            continue
        if spec.crm is None:
            skipped.append((spec.name, "no crm target: it names no object to poll"))
            continue
        read, problem = _reads(spec)
        if problem is not None:
            skipped.append((spec.name, problem))
            continue
        target = declared.setdefault(spec.crm.object.lower(), _Declared(spec.crm.object))
        _add(target.read, *read)
        _add(target.written, *spec.crm.written_fields)
        _add(target.routes.setdefault(spec.source.topics[0], []), *accepted)
        target.enrichments.append(spec.name)
    objects = []
    for d in declared.values():
        queried: list[str] = []
        _add(queried, *d.read, *d.written)  # the written ones too: a person's override is a changed field
        spelled = {f.lower(): f for f in queried}  # compared as tracked: one spelling each
        managed: list[str] = []
        ours = (*MANAGED_FIELDS.get(d.sobject, ()), *d.written, *written_by_any[d.sobject.lower()])
        _add(managed, *(spelled.get(f.lower(), f) for f in ours))
        objects.append(
            SourceObject(
                d.sobject,
                "record",
                tuple(queried),
                tuple(queried),
                partial(_record, payload=tuple(d.read)),
                routes=tuple(Route(topic, tuple(types)) for topic, types in d.routes.items()),
                managed=tuple(managed),
                key=RECORD_KEY_PREFIX + d.sobject,
                enrichments=tuple(d.enrichments),
            )
        )
    return RecordPlan(tuple(objects), tuple(skipped))


def _record_value(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = value if isinstance(value, str) else json.dumps(value, default=str)  # a compound field (address): its JSON
    return text[:_TEXT_MAX]


def _record(record: ChangedRecord, change: Change, *, payload: tuple[str, ...]) -> tuple[str, BaseModel]:
    data = RecordChanged(
        sobject=record.ref.sobject,
        record_id=record.ref.record_id,
        fields={f: _record_value(record.fields.get(f)) for f in payload},
        changed_fields=() if change.created else change.changed_fields,
        last_modified=record.last_modified,
    )
    return ("crm.record.created" if change.created else "crm.record.updated"), data
