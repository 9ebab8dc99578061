"""Which CRM fields a result fills: the field map, overridable per deployment.

A mapping turns one result into one :class:`PlannedWrite`: the record it
targets and the values to set. The values come only from closed, validated
result fields, so model output can never pick the field or the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmpilot.events import EmailSummary, RequestScore, TicketClassification

from .port import RecordRef

__all__ = ["PlannedWrite", "plan_write", "MANAGED_FIELDS", "RESULT_ID_FIELD"]

RESULT_ID_FIELD = "AI_Result_Id__c"
REVIEW_FIELD = "AI_Review_Required__c"
TRACE_FIELD = "AI_Trace_Id__c"

Result = TicketClassification | EmailSummary | RequestScore


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    ref: RecordRef
    values: dict[str, Any]


def _common(result: Result) -> dict[str, Any]:
    return {
        RESULT_ID_FIELD: result.result_id,
        REVIEW_FIELD: result.review != "auto_apply",
        TRACE_FIELD: result.provenance.trace_id,
    }


def _ticket(r: TicketClassification) -> PlannedWrite:
    return PlannedWrite(
        RecordRef("Case", r.case_id),
        {
            "AI_Category__c": r.category,
            "AI_Priority__c": r.priority,
            "AI_Sentiment__c": r.sentiment,
            "AI_Confidence__c": round(r.confidence.get("category", 0.0), 4),
        },
    )


def _email(r: EmailSummary) -> PlannedWrite | None:
    if r.case_id is None:
        return None
    return PlannedWrite(RecordRef("Case", r.case_id), {"AI_Summary__c": r.summary[:32000], "AI_Sentiment__c": r.sentiment})


def _score(r: RequestScore) -> PlannedWrite | None:
    if r.kind != "lead":
        return None
    reasons = "; ".join(f"{'+' if f.direction == 'up' else '-'} {f.name}" for f in r.factors)
    return PlannedWrite(RecordRef("Lead", r.request_id), {"AI_Score__c": r.score, "AI_Score_Reasons__c": reasons[:1000]})


def plan_write(result: Result) -> PlannedWrite | None:
    """The write a result asks for, or None when it targets no CRM record."""
    if isinstance(result, TicketClassification):
        planned = _ticket(result)
    elif isinstance(result, EmailSummary):
        planned = _email(result)
    else:
        planned = _score(result)
    if planned is None:
        return None
    return PlannedWrite(planned.ref, {**planned.values, **_common(result)})


MANAGED_FIELDS: dict[str, tuple[str, ...]] = {
    "Case": ("AI_Category__c", "AI_Priority__c", "AI_Sentiment__c", "AI_Confidence__c", "AI_Summary__c", RESULT_ID_FIELD, REVIEW_FIELD, TRACE_FIELD),
    "Lead": ("AI_Score__c", "AI_Score_Reasons__c", RESULT_ID_FIELD, REVIEW_FIELD, TRACE_FIELD),
}
