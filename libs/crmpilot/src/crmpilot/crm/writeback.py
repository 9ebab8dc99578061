"""Write results back to the CRM without clobbering a person, and audit every change.

For a batch of results: plan each write, read the target records' current state
in one call, then decide per record:

- ``already_applied``: the record already carries this result id (a redelivery);
  nothing is written twice.
- ``skipped_human_edit``: someone other than the integration user changed the
  record after the event the result answers; their edit wins.
- ``skipped_not_found``: the record no longer exists.
- ``skipped_low_confidence``: the result's review decision is ``skip``.
- ``applied``: written in one sObject Collections call; before/after values of
  every field go to the audit log, so the change can be reverted.

A write the CRM refuses (picklist, validation) raises :class:`CRMRejected`,
which the runtime sends to the dead-letter topic with the CRM's error code.
"""

from __future__ import annotations

import json

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from crmpilot.warehouse.records import CrmAuditEntry

from .errors import CRMRejected
from .mapping import MANAGED_FIELDS, RESULT_ID_FIELD, PlannedWrite, Result, plan_write
from .port import CRM, RecordUpdate

__all__ = ["AuditLog", "WriteReport", "write_back"]

Status = Literal["applied", "already_applied", "skipped_human_edit", "skipped_not_found", "skipped_low_confidence", "no_target"]


class AuditLog(Protocol):
    """Where audit entries go: the warehouse (``crmpilot.warehouse.Warehouse`` satisfies it)."""

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int: ...


@dataclass(frozen=True, slots=True)
class WriteReport:
    result_id: str
    status: Status
    sobject: str | None = None
    record_id: str | None = None
    fields: tuple[str, ...] = ()


def write_back(results: Sequence[Result], crm: CRM, audit: AuditLog) -> list[WriteReport]:
    """Apply a batch of results; returns one report per result, in order."""
    now = datetime.now(UTC)
    plans: list[tuple[Result, PlannedWrite | None]] = [(r, plan_write(r)) for r in results]
    states = _fetch_states([p for _, p in plans if p is not None], crm)

    reports: dict[str, WriteReport] = {}
    entries: list[CrmAuditEntry] = []
    to_write: list[tuple[Result, PlannedWrite, dict[str, Any]]] = []
    for result, plan in plans:
        if plan is None:
            reports[result.result_id] = WriteReport(result.result_id, "no_target")
            continue
        state = states.get((plan.ref.sobject, plan.ref.record_id))
        status, reason = _decide(result, state, crm.user_id)
        if status is None:
            before = dict(state.fields) if state else {}
            to_write.append((result, plan, before))
            continue
        reports[result.result_id] = WriteReport(result.result_id, status, plan.ref.sobject, plan.ref.record_id)
        if status != "already_applied":
            entries.append(_entry(result, plan, "*", None, None, status, reason, now))

    if to_write:
        outcomes = crm.update([RecordUpdate(p.ref, p.values) for _, p, _ in to_write])
        rejected = []
        for (result, plan, before), outcome in zip(to_write, outcomes, strict=True):
            if outcome.ok:
                for field, after in plan.values.items():
                    entries.append(_entry(result, plan, field, before.get(field), after, "applied", None, now))
                reports[result.result_id] = WriteReport(result.result_id, "applied", plan.ref.sobject, plan.ref.record_id, tuple(plan.values))
            elif outcome.code in {"ENTITY_IS_DELETED", "NOT_FOUND"}:
                entries.append(_entry(result, plan, "*", None, None, "skipped_not_found", outcome.message, now))
                reports[result.result_id] = WriteReport(result.result_id, "skipped_not_found", plan.ref.sobject, plan.ref.record_id)
            else:
                rejected.append(f"{plan.ref.sobject} {plan.ref.record_id}: {outcome.code} {outcome.message} {list(outcome.fields)}")
                rejected_code = outcome.code
        audit.record_crm_audit(entries)
        if rejected:
            raise CRMRejected("; ".join(rejected), code=rejected_code)
    else:
        audit.record_crm_audit(entries)
    return [reports[r.result_id] for r in results]


def _fetch_states(plans: Sequence[PlannedWrite], crm: CRM) -> dict[tuple[str, str], Any]:
    by_type: dict[str, list[str]] = {}
    for p in plans:
        by_type.setdefault(p.ref.sobject, []).append(p.ref.record_id)
    states: dict[tuple[str, str], Any] = {}
    for sobject, ids in by_type.items():
        for rid, state in crm.fetch(sobject, list(dict.fromkeys(ids)), MANAGED_FIELDS[sobject]).items():
            states[(sobject, rid)] = state
    return states


def _decide(result: Result, state: Any, integration_user: str) -> tuple[Status | None, str | None]:
    if result.review == "skip":
        return "skipped_low_confidence", "review decision is skip"
    if state is None:
        return "skipped_not_found", "record does not exist"
    if state.fields.get(RESULT_ID_FIELD) == result.result_id:
        return "already_applied", None
    event_time = result.provenance.event_time
    if state.last_modified > event_time and state.last_modified_by != integration_user:
        return "skipped_human_edit", f"edited by {state.last_modified_by} at {state.last_modified.isoformat()} after the event at {event_time.isoformat()}"
    return None, None


def _entry(result: Result, plan: PlannedWrite, field: str, before: Any, after: Any, status: Status, reason: str | None, at: datetime) -> CrmAuditEntry:
    return CrmAuditEntry(
        result_id=result.result_id,
        sobject=plan.ref.sobject,
        record_id=plan.ref.record_id,
        field=field,
        before_value=_text(before),
        after_value=_text(after),
        status=status,  # type: ignore[arg-type]
        reason=reason,
        trace_id=result.provenance.trace_id,
        applied_at=at,
    )


def _text(value: Any) -> str | None:
    """Audit values are stored as text, exactly as a revert must write them back."""
    if value is None:
        return None
    return json.dumps(value) if isinstance(value, bool | int | float) else str(value)
