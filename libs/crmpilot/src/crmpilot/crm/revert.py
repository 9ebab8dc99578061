"""Undo applied write-backs: restore the audited before-values, never over a later change.

The operator selects ``applied`` audit entries (by time, writer run or result
ids; see :func:`select_applied`). Per record and field, the value to restore is
the ``before`` of the earliest selected entry, and the value we expect to find
is the ``after`` of the latest one. The revert is itself conditional: a field
whose current value is no longer what we wrote (a person changed it since) is
left alone and reported ``changed_since``; so is every field of a record whose
``AI_Result_Id__c`` names a result outside the selection (a later result wrote
it since; its values are not ours to undo).

Restores go through :meth:`CRM.update` (sObject Collections: one read per 2,000
records, one write per 200). Each restored field marks its original entries
``reverted`` and adds an audit row with status ``reverted`` (before: our value,
after: the restored one, ``run_id``: the revert run), chunk by chunk, so an
interrupted revert is recorded as far as it went. A dry run reads the records
and reports the same plan without writing anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from crmpilot.warehouse.privacy import ERASED
from crmpilot.warehouse.records import AuditStatus, CrmAuditEntry

from .mapping import RESULT_ID_FIELDS
from .port import CRM, RecordRef, RecordState, RecordUpdate
from .salesforce import BATCH_LIMIT, READ_LIMIT
from .values import from_audit_text, same_value, to_audit_text
from .writeback import RECOVERED

__all__ = ["RevertLog", "RevertStatus", "FieldRevert", "RevertReport", "new_revert_run_id", "select_applied", "revert"]

RevertStatus = Literal["reverted", "would_revert", "changed_since", "not_found", "failed", "unknown_before"]
_GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND"})


class RevertLog(Protocol):
    """The audit log a revert reads and records into (``PostgresWarehouse`` satisfies it)."""

    def crm_audit(
        self,
        *,
        since: datetime | None = None,
        run_id: str | None = None,
        result_ids: Sequence[str] | None = None,
        statuses: Sequence[AuditStatus] = ("applied",),
    ) -> list[CrmAuditEntry]: ...

    def mark_reverted(self, audit_ids: Sequence[int], *, at: datetime | None = None) -> int: ...

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int: ...


@dataclass(frozen=True, slots=True)
class FieldRevert:
    """What happened (or, in a dry run, would happen) to one field of one record."""

    sobject: str
    record_id: str
    field: str
    result_id: str
    ours: str | None
    """The value we wrote (the latest selected entry's after-value)."""
    restore: str | None
    """The value before our first selected write."""
    current: str | None
    status: RevertStatus
    reason: str | None = None
    audit_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RevertReport:
    run_id: str
    dry_run: bool
    fields: tuple[FieldRevert, ...]
    records: int
    api_calls: int

    def count(self, status: RevertStatus) -> int:
        return sum(f.status == status for f in self.fields)

    def with_status(self, *statuses: RevertStatus) -> list[FieldRevert]:
        return [f for f in self.fields if f.status in statuses]


def new_revert_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"revert-{stamp}-{uuid.uuid4().hex[:6]}"


def select_applied(
    log: RevertLog, *, since: datetime | None = None, run_id: str | None = None, result_ids: Sequence[str] | None = None
) -> list[CrmAuditEntry]:
    """The applied field changes matching every given filter, oldest first."""
    if since is None and run_id is None and not result_ids:
        raise ValueError("select by at least one of since, run_id, result_ids")
    entries = log.crm_audit(since=since, run_id=run_id, result_ids=result_ids or None, statuses=("applied",))
    # an erased person's entries name no record any more (`crmpilot erase`): nothing to restore
    return [e for e in entries if e.field != "*" and e.record_id != ERASED]


@dataclass
class _Record:
    ref: RecordRef
    by_field: dict[str, list[CrmAuditEntry]] = field(default_factory=dict)


def revert(
    entries: Sequence[CrmAuditEntry],
    crm: CRM,
    log: RevertLog,
    *,
    run_id: str,
    dry_run: bool = False,
    on_progress: Callable[[int], None] | None = None,
    multi_select: Collection[tuple[str, str]] = frozenset(),
) -> RevertReport:
    """Restore the before-values of ``entries`` where the CRM still holds our values.

    ``multi_select``: ``(sObject, field)`` pairs whose values compare as sets (an org may return the selected
    values of a multi-select picklist in its own order).

    ``on_progress(n)`` is called as each chunk of ``n`` records is done. CRM
    errors of a whole call (unavailable, limits, session) are raised; what was
    reverted before them is already recorded.
    """
    records = _group(entries)
    calls_before = crm.api_calls
    outcome: list[FieldRevert] = []
    by_type: dict[str, list[_Record]] = {}
    for rec in records:
        by_type.setdefault(rec.ref.sobject, []).append(rec)
    for sobject, recs in by_type.items():
        for start in range(0, len(recs), READ_LIMIT):
            chunk = recs[start : start + READ_LIMIT]
            fields = sorted({f for r in chunk for f in r.by_field})
            states = crm.fetch(sobject, [r.ref.record_id for r in chunk], fields)
            for sub in range(0, len(chunk), BATCH_LIMIT):
                part = chunk[sub : sub + BATCH_LIMIT]
                outcome += _revert_part(
                    part, states, crm, log, run_id=run_id, dry_run=dry_run, multi_select=multi_select
                )
                if on_progress is not None:
                    on_progress(len(part))
    return RevertReport(run_id, dry_run, tuple(outcome), len(records), crm.api_calls - calls_before)


def _group(entries: Sequence[CrmAuditEntry]) -> list[_Record]:
    records: dict[RecordRef, _Record] = {}
    for e in sorted(entries, key=lambda e: (e.applied_at or datetime.min.replace(tzinfo=UTC), e.id or 0)):
        ref = RecordRef(e.sobject, e.record_id)
        records.setdefault(ref, _Record(ref)).by_field.setdefault(e.field, []).append(e)
    return list(records.values())


def _plan(
    rec: _Record, state: RecordState | None, *, dry_run: bool, multi_select: Collection[tuple[str, str]]
) -> tuple[list[FieldRevert], dict[str, Any]]:
    """Per field: restore (with the typed value to write), or why not."""
    planned: list[FieldRevert] = []
    values: dict[str, Any] = {}
    superseded = _superseded(rec, state)
    for name, chain in rec.by_field.items():
        first, last = chain[0], chain[-1]
        base = FieldRevert(
            sobject=rec.ref.sobject,
            record_id=rec.ref.record_id,
            field=name,
            result_id=last.result_id,
            ours=last.after_value,
            restore=first.before_value,
            current=None,
            status="not_found",
            reason="record does not exist",
            audit_ids=tuple(e.id for e in chain if e.id is not None),
        )
        if state is None:
            planned.append(base)
            continue
        current = state.fields.get(name)
        now = to_audit_text(current)
        if superseded:
            planned.append(replace(base, current=now, status="changed_since", reason=superseded))
            continue
        if not same_value(current, last.after_value, multi_select=(rec.ref.sobject, name) in multi_select):
            reason = (
                f"changed since our write: now {now!r}"
                f" (record last modified by {state.last_modified_by} at {state.last_modified.isoformat()})"
            )
            planned.append(replace(base, current=now, status="changed_since", reason=reason))
            continue
        if (first.reason or "").startswith(RECOVERED):
            planned.append(replace(base, current=now, status="unknown_before", reason=first.reason))
            continue
        values[name] = from_audit_text(first.before_value, like=current)
        planned.append(replace(base, current=now, status="would_revert" if dry_run else "reverted", reason=None))
    return planned, values


def _superseded(rec: _Record, state: RecordState | None) -> str | None:
    """Why the record's fields are no longer ours to revert, if a later result wrote them."""
    if state is None:
        return None
    # a result-id marker field (built-in or declared) is one whose written value is the result id itself
    markers = [
        f for f, chain in rec.by_field.items() if f in RESULT_ID_FIELDS or chain[-1].after_value == chain[-1].result_id
    ]
    for id_field in markers:
        chain = rec.by_field[id_field]
        current = state.fields.get(id_field)
        if not same_value(current, chain[-1].after_value):
            return (
                f"superseded: the record now carries result {current!r} ({id_field}), written after the selected ones"
            )
    return None


def _revert_part(
    part: Sequence[_Record],
    states: dict[str, RecordState],
    crm: CRM,
    log: RevertLog,
    *,
    run_id: str,
    dry_run: bool,
    multi_select: Collection[tuple[str, str]],
) -> list[FieldRevert]:
    done: list[FieldRevert] = []
    writes: list[tuple[list[FieldRevert], RecordUpdate]] = []
    for rec in part:
        planned, values = _plan(rec, states.get(rec.ref.record_id), dry_run=dry_run, multi_select=multi_select)
        if values and not dry_run:
            writes.append((planned, RecordUpdate(rec.ref, values)))
        else:
            done += planned
    if not writes:
        return done
    now = datetime.now(UTC)
    reverted_ids: list[int] = []
    rows: list[CrmAuditEntry] = []
    for (planned, _), result in zip(writes, crm.update([u for _, u in writes]), strict=True):
        for fr in planned:
            if fr.status != "reverted":
                done.append(fr)
            elif result.ok:
                done.append(fr)
                reverted_ids += fr.audit_ids
                rows.append(_audit_row(fr, run_id, now))
            else:
                status: RevertStatus = "not_found" if result.code in _GONE else "failed"
                done.append(replace(fr, status=status, reason=f"{result.code}: {result.message}"))
    if reverted_ids:
        log.mark_reverted(reverted_ids, at=now)
        log.record_crm_audit(rows)
    return done


def _audit_row(fr: FieldRevert, run_id: str, at: datetime) -> CrmAuditEntry:
    return CrmAuditEntry(
        result_id=fr.result_id,
        sobject=fr.sobject,
        record_id=fr.record_id,
        field=fr.field,
        before_value=fr.ours,
        after_value=fr.restore,
        status="reverted",
        reason=f"reverted by {run_id}",
        run_id=run_id,
        applied_at=at,
    )
