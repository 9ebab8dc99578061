"""Write results back to the CRM without clobbering a person, and audit every change.

For a batch of results: plan each write, read the target records' current state
in one call, then decide per record:

- ``already_applied``: the record already carries this result id (a redelivery);
  nothing is written twice.
- ``already_reverted``: an operator reverted this result (``crmpilot crm revert``);
  a redelivery of it does not write it again.
- ``skipped_human_edit``: someone other than the integration user changed the
  record after the event the result answers; their edit wins.
- ``skipped_not_found``: the record no longer exists.
- ``skipped_low_confidence``: the result's review decision is ``skip``.
- ``applied``: written in one sObject Collections call; before/after values of
  every field go to the audit log, so the change can be reverted.

- ``rejected``: the CRM refused the values (picklist, validation); the caller
  raises :class:`CRMRejected` for that record alone, which the runtime sends to
  the dead-letter topic with the CRM's error code.

Audit entries carry the caller's ``run_id`` (the writer's run), so a whole run
can be reverted with ``crmpilot crm revert --run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from crmpilot.enrichments.spec import EnrichmentSpec
from crmpilot.warehouse.records import AuditStatus, CrmAuditEntry

from .errors import CRMRejected
from .mapping import MANAGED_FIELDS, PlannedWrite, Result, plan_write
from .port import CRM, RecordRef, RecordUpdate
from .values import to_audit_text

__all__ = ["AuditLog", "WriteReport", "write_back", "RECOVERED"]

RECOVERED = "recovered"
"""Reason prefix of audit rows written after the fact: their before value is unknown, so revert leaves them."""

Status = Literal[
    "applied",
    "already_applied",
    "already_reverted",
    "skipped_human_edit",
    "skipped_not_found",
    "skipped_low_confidence",
    "no_target",
    "rejected",
]
_Decision = Literal["already_applied", "skipped_human_edit", "skipped_not_found", "skipped_low_confidence"]
"""What :func:`_decide` says of a planned write that is not to be made."""


class AuditLog(Protocol):
    """Where audit entries go: the warehouse (``crmpilot.warehouse.Warehouse`` satisfies it)."""

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int: ...

    def crm_audit(
        self, *, result_ids: Sequence[str] | None = None, statuses: Sequence[AuditStatus] = ("applied",)
    ) -> list[CrmAuditEntry]: ...


@dataclass(frozen=True, slots=True)
class WriteReport:
    result_id: str
    status: Status
    sobject: str | None = None
    record_id: str | None = None
    fields: tuple[str, ...] = ()
    error_code: str | None = None
    message: str | None = None

    def raise_if_rejected(self) -> None:
        if self.status == "rejected":
            raise CRMRejected(self.message or "rejected by the CRM", code=self.error_code)


def write_back(
    results: Sequence[Result],
    crm: CRM,
    audit: AuditLog,
    *,
    run_id: str | None = None,
    enrichments: Mapping[str, EnrichmentSpec] | None = None,
) -> list[WriteReport]:
    """Apply a batch of results; returns one report per result, in order.

    A record the CRM refuses is reported ``rejected`` with the CRM's error code
    (the others of the batch are unaffected); errors of the whole call
    (CRM down, limits, session) are raised for the caller to retry.
    """
    now = datetime.now(UTC)
    plans: list[tuple[Result, PlannedWrite | None]] = [(r, plan_write(r, enrichments)) for r in results]
    states = _fetch_states([p for _, p in plans if p is not None], crm)

    reports: dict[str, WriteReport] = {}
    entries: list[CrmAuditEntry] = []
    to_write: list[tuple[Result, PlannedWrite]] = []
    already: list[tuple[Result, PlannedWrite]] = []
    current: dict[RecordRef, dict[str, Any]] = {}  # field values as they stand, round after round
    for result, plan in plans:
        if plan is None:
            reports[result.result_id] = WriteReport(result.result_id, "no_target")
            continue
        state = states.get((plan.ref.sobject, plan.ref.record_id))
        status, reason = _decide(result, plan, state, crm.user_id)
        if status is None:
            assert state is not None  # _decide gives a missing record its status
            to_write.append((result, plan))
            current.setdefault(plan.ref, dict(state.fields))
            continue
        reports[result.result_id] = WriteReport(result.result_id, status, plan.ref.sobject, plan.ref.record_id)
        if status == "already_applied":
            already.append((result, plan))
        else:
            entries.append(_entry(result, plan, "*", None, None, status, reason, now, run_id))
    history = _audit_statuses(already + to_write, audit)
    entries.extend(_recovered(already, history, now, run_id))
    to_write = _drop_reverted(to_write, history, reports)

    for round_ in _rounds(to_write):
        outcomes = crm.update([RecordUpdate(p.ref, p.values) for _, p in round_])
        for (result, plan), outcome in zip(round_, outcomes, strict=True):
            ref = plan.ref
            if outcome.ok:
                before = current[ref]
                entries.extend(
                    _entry(result, plan, f, before.get(f), v, "applied", None, now, run_id)
                    for f, v in plan.values.items()
                )
                before.update(plan.values)
                reports[result.result_id] = WriteReport(
                    result.result_id, "applied", ref.sobject, ref.record_id, tuple(plan.values)
                )
            elif outcome.code in {"ENTITY_IS_DELETED", "NOT_FOUND"}:
                entries.append(_entry(result, plan, "*", None, None, "skipped_not_found", outcome.message, now, run_id))
                reports[result.result_id] = WriteReport(
                    result.result_id, "skipped_not_found", ref.sobject, ref.record_id
                )
            else:
                message = (
                    f"{ref.sobject} {ref.record_id}: {outcome.code}: {outcome.message} (fields "
                    f"{', '.join(outcome.fields) or '-'})"
                )
                entries.append(_entry(result, plan, "*", None, None, "failed", message, now, run_id))
                reports[result.result_id] = WriteReport(
                    result.result_id, "rejected", ref.sobject, ref.record_id, outcome.fields, outcome.code, message
                )
    if entries:
        audit.record_crm_audit(entries)
    return [reports[r.result_id] for r in results]


def _audit_statuses(items: list[tuple[Result, PlannedWrite]], audit: AuditLog) -> dict[str, set[str]]:
    """Result id -> the ``applied``/``reverted`` statuses its audit rows have (one audit query per batch)."""
    if not items:
        return {}
    statuses: dict[str, set[str]] = {}
    for e in audit.crm_audit(result_ids=[r.result_id for r, _ in items], statuses=("applied", "reverted")):
        statuses.setdefault(e.result_id, set()).add(e.status)
    return statuses


def _recovered(
    already: list[tuple[Result, PlannedWrite]], history: dict[str, set[str]], now: datetime, run_id: str | None
) -> list[CrmAuditEntry]:
    """Audit rows for writes the CRM holds but the audit lost (the writer died between the two).

    The values written are known (they are the result's); the values they
    replaced are not, which the reason says, so a revert can tell.
    """
    audited = {rid for rid, statuses in history.items() if "applied" in statuses}
    reason = (
        f"{RECOVERED}: the CRM already held this result but its audit was missing; the value it replaced is unknown"
    )
    return [
        _entry(result, plan, field, None, value, "applied", reason, now, run_id)
        for result, plan in already
        if result.result_id not in audited
        for field, value in plan.values.items()
    ]


def _drop_reverted(
    to_write: list[tuple[Result, PlannedWrite]], history: dict[str, set[str]], reports: dict[str, WriteReport]
) -> list[tuple[Result, PlannedWrite]]:
    """The writes whose result was not reverted by an operator; the others are reported ``already_reverted``."""
    reverted = {rid for rid, statuses in history.items() if "reverted" in statuses}
    for result, plan in to_write:
        if result.result_id in reverted:
            reports[result.result_id] = WriteReport(
                result.result_id, "already_reverted", plan.ref.sobject, plan.ref.record_id
            )
    return [(r, p) for r, p in to_write if r.result_id not in reverted]


def _rounds(items: list[tuple[Result, PlannedWrite]]) -> list[list[tuple[Result, PlannedWrite]]]:
    """Split writes so no record appears twice in one update call (later results in later rounds)."""
    rounds: list[list[tuple[Result, PlannedWrite]]] = []
    seen: list[set[RecordRef]] = []
    for item in items:
        ref = item[1].ref
        i = next((n for n, refs in enumerate(seen) if ref not in refs), len(rounds))
        if i == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[i].append(item)
        seen[i].add(ref)
    return rounds


def _fetch_states(plans: Sequence[PlannedWrite], crm: CRM) -> dict[tuple[str, str], Any]:
    by_type: dict[str, list[str]] = {}
    fields: dict[str, dict[str, None]] = {}
    for p in plans:
        by_type.setdefault(p.ref.sobject, []).append(p.ref.record_id)
        fields.setdefault(p.ref.sobject, dict.fromkeys(MANAGED_FIELDS.get(p.ref.sobject, ()))).update(
            dict.fromkeys((*p.values, p.id_field))
        )
    states: dict[tuple[str, str], Any] = {}
    for sobject, ids in by_type.items():
        for rid, state in crm.fetch(sobject, list(dict.fromkeys(ids)), tuple(fields[sobject])).items():
            states[(sobject, rid)] = state
    return states


def _decide(
    result: Result, plan: PlannedWrite, state: Any, integration_user: str
) -> tuple[_Decision | None, str | None]:
    if result.review == "skip":
        return "skipped_low_confidence", "review decision is skip"
    if state is None:
        return "skipped_not_found", "record does not exist"
    if state.fields.get(plan.id_field) == result.result_id:
        return "already_applied", None
    event_time = result.provenance.event_time
    if state.last_modified > event_time and state.last_modified_by != integration_user:
        return (
            "skipped_human_edit",
            f"edited by {state.last_modified_by} at {state.last_modified.isoformat()} after the event at "
            f"{event_time.isoformat()}",
        )
    return None, None


def _entry(
    result: Result,
    plan: PlannedWrite,
    field: str,
    before: Any,
    after: Any,
    status: AuditStatus,
    reason: str | None,
    at: datetime,
    run_id: str | None,
) -> CrmAuditEntry:
    return CrmAuditEntry(
        result_id=result.result_id,
        sobject=plan.ref.sobject,
        record_id=plan.ref.record_id,
        field=field,
        before_value=to_audit_text(before),
        after_value=to_audit_text(after),
        status=status,
        reason=reason,
        trace_id=result.provenance.trace_id,
        run_id=run_id,
        applied_at=at,
    )
