"""Which CRM fields a result fills: the field map, overridable per deployment.

A mapping turns one result into one :class:`PlannedWrite`: the record it
targets and the values to set. The values come only from closed, validated
result fields, so model output can never pick the field or the record. A
result for a skipped input (empty or not text) targets nothing, and an email's
action items reach the Case only when their quote was found in the email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from crmpilot.enrichments.spec import CrmTarget, EnrichmentSpec
from crmpilot.enrichments.task import field_adapter
from crmpilot.events import EmailSummary, EnrichmentResult, PoisonMessage, TicketClassification

from .port import RecordRef

__all__ = [
    "PlannedWrite",
    "plan_write",
    "MANAGED_FIELDS",
    "AI_VALUE_FIELDS",
    "RESULT_ID_FIELD",
    "SUMMARY_RESULT_ID_FIELD",
    "RESULT_ID_FIELDS",
    "result_id_field",
    "id_field_for",
    "OffSpecResult",
    "UnknownEnrichmentResult",
]

RESULT_ID_FIELD = "AI_Result_Id__c"
REVIEW_FIELD = "AI_Review_Required__c"
TRACE_FIELD = "AI_Trace_Id__c"
# An email summary and a ticket classification both land on the Case; each task
# owns its own fields, result id included, so one never hides the other's
# "already applied" marker.
SUMMARY_RESULT_ID_FIELD = "AI_Summary_Result_Id__c"
SUMMARY_REVIEW_FIELD = "AI_Summary_Review_Required__c"
RESULT_ID_FIELDS = (RESULT_ID_FIELD, SUMMARY_RESULT_ID_FIELD)

Result = TicketClassification | EmailSummary | EnrichmentResult


class UnknownEnrichmentResult(PoisonMessage):
    """A result of an enrichment this writer has no spec for: it cannot know where the values go."""

    code = "unknown_enrichment"


class OffSpecResult(PoisonMessage):
    """A result whose value for a CRM-mapped output does not fit the spec (a value outside its vocabulary or bounds):
    the event contract holds any output value, the spec says which one this field may hold."""

    code = "off_spec_result"


def _off_spec(result: EnrichmentResult, spec: EnrichmentSpec, target: CrmTarget) -> None:
    for output in target.fields:  # every one an output of the spec (checked at load)
        if output not in result.outputs:
            continue
        try:
            field_adapter(spec, output).validate_python(result.outputs[output])
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (output, *first["loc"]))
            raise OffSpecResult(f"{spec.name} result {result.result_id}: {where}: {first['msg']}"[:500]) from None


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    ref: RecordRef
    values: dict[str, Any]
    id_field: str = RESULT_ID_FIELD
    """The field that carries the result id (the write's idempotency marker)."""


def result_id_field(result: Result) -> str:
    """The CRM field that carries a built-in result's id."""
    return SUMMARY_RESULT_ID_FIELD if isinstance(result, EmailSummary) else RESULT_ID_FIELD


def _common(result: Result) -> dict[str, Any]:
    if isinstance(result, EmailSummary):
        return {SUMMARY_RESULT_ID_FIELD: result.result_id, SUMMARY_REVIEW_FIELD: result.review != "auto_apply"}
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
    grounded = [i for i in r.action_items if i.quote not in r.grounding_failures]
    lines = [
        f"- {i.text}" + (f" ({', '.join(x for x in (i.owner, i.due) if x)})" if i.owner or i.due else "")
        for i in grounded
    ]
    summary = r.summary + ("\n\nAction items:\n" + "\n".join(lines) if lines else "")
    return PlannedWrite(RecordRef("Case", r.case_id), {"AI_Summary__c": summary[:32000]})


def _declared(r: EnrichmentResult, target: CrmTarget) -> PlannedWrite | None:
    """The fields of a declared enrichment's target whose review is not ``skip``, the confidence of each that has a
    confidence field, and the markers."""
    values: dict[str, Any] = {
        crm_field: r.outputs[output]
        for output, crm_field in target.fields.items()
        if r.field_review.get(output, "skip") != "skip" and output in r.outputs
    }
    if not values:
        return None
    values = {f: _crm_value(v) for f, v in values.items()}
    for output, crm_field in target.confidence_fields.items():
        if target.fields[output] in values and output in r.confidence:
            values[crm_field] = round(r.confidence[output], 4)
    values[target.result_id_field] = r.result_id
    if target.review_field:
        values[target.review_field] = r.review != "auto_apply"
    if target.trace_field:
        values[target.trace_field] = r.provenance.trace_id
    return PlannedWrite(RecordRef(target.object, r.record_id), values, id_field=target.result_id_field)


def _crm_value(value: Any) -> Any:
    """Selected values as a multi-select picklist holds them (``a;b``), quoted and structured items as one line
    each; every other value as it is."""
    if isinstance(value, tuple | list):
        if all(isinstance(item, str) for item in value):
            return ";".join(value)
        return "\n".join(_item_line(item) for item in value)
    return value


def _item_line(item: Any) -> str:
    """One quoted item as ``- text ("quote")``; a structured item as ``- field: value, … ("quote")``."""
    if not isinstance(item, Mapping):
        return f'- {item.text} ("{item.quote}")'
    shown = ", ".join(f"{k}: {v}" for k, v in item.items() if k != "quote" and v not in (None, ""))
    return f"- {shown}" + (f' ("{item["quote"]}")' if item.get("quote") else "")


def plan_write(result: Result, enrichments: Mapping[str, EnrichmentSpec] | None = None) -> PlannedWrite | None:
    """The write a result asks for, or None when it targets no CRM record.

    A declared enrichment's result is mapped by its spec in ``enrichments`` (by name);
    one without a spec there is refused (:class:`UnknownEnrichmentResult`).
    """
    if result.skipped is not None:
        return None
    if isinstance(result, EnrichmentResult):
        spec = (enrichments or {}).get(result.task)
        if spec is None:
            raise UnknownEnrichmentResult(
                f"no enrichment spec {result.task!r} is registered with this writer (CRMPILOT_ENRICHMENTS_DIR)"
            )
        if spec.crm is None or not result.to_crm:
            return None
        _off_spec(result, spec, spec.crm)
        if result.review == "skip":  # nothing to write: planned all the same, so the decision is audited
            return PlannedWrite(RecordRef(spec.crm.object, result.record_id), {}, id_field=spec.crm.result_id_field)
        return _declared(result, spec.crm)
    planned: PlannedWrite | None
    if isinstance(result, TicketClassification):
        planned = _ticket(result)
    else:
        planned = _email(result)
    if planned is None:
        return None
    return PlannedWrite(planned.ref, {**planned.values, **_common(result)}, id_field=result_id_field(result))


MANAGED_FIELDS: dict[str, tuple[str, ...]] = {
    "Case": (
        "AI_Category__c",
        "AI_Priority__c",
        "AI_Sentiment__c",
        "AI_Confidence__c",
        RESULT_ID_FIELD,
        REVIEW_FIELD,
        TRACE_FIELD,
        "AI_Summary__c",
        SUMMARY_RESULT_ID_FIELD,
        SUMMARY_REVIEW_FIELD,
    ),  # fmt: skip
}

AI_VALUE_FIELDS: dict[str, tuple[str, ...]] = {
    "Case": ("AI_Category__c", "AI_Priority__c", "AI_Sentiment__c", "AI_Summary__c"),
}
"""The managed fields that hold the AI's answer: a person changing one of them is feedback."""


def id_field_for(field: str) -> str:
    """The result-id field of the task that owns ``field`` (the summary's, or the default)."""
    return (
        SUMMARY_RESULT_ID_FIELD
        if field in ("AI_Summary__c", SUMMARY_RESULT_ID_FIELD, SUMMARY_REVIEW_FIELD)
        else RESULT_ID_FIELD
    )
