"""A result of the built-in ``score_request`` enrichment, as the enricher publishes it on ``ai.request.scored``.

One shape for every test that needs a request score (bad input, warehouse rows and
tables, privacy, KPIs, the result contract): an ``EnrichmentResult`` with
``task="score_request"``, the request as ``record_id`` and the outputs of
``crmpilot/tasks/specs/score_request.yaml`` (score, factors, risk_flags, next_action,
and the band and reasons its hooks derive). What a test varies (score, kind, review,
factors, risk flags, confidence) is an argument; the provenance is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from crmpilot.events import EnrichmentResult, Envelope, Provenance, ReviewDecision, result_id_for
from crmpilot.tasks.scoring import band_for, reasons_line

__all__ = ["EVENT_TYPE", "OUTPUTS", "TASK", "TOPIC", "factor", "scored_event", "scored_request"]

TASK = "score_request"
TOPIC = "ai.request.scored"
"""The spec's ``output_topic``."""
EVENT_TYPE = "ai.enrichment.completed"
OUTPUTS = ("score", "factors", "risk_flags", "next_action", "band", "reasons")
"""The outputs of every score_request result: the four the model answers, then the two its hooks derive."""


def factor(
    name: str, direction: Literal["up", "down"] = "up", weight: float = 10.0, evidence: str = "Budget approved."
) -> dict[str, Any]:
    """One item of the ``factors`` output: a reason that moved the score, with its evidence."""
    return {"name": name, "direction": direction, "weight": float(weight), "evidence": evidence}


def scored_request(
    provenance: Provenance,
    *,
    request_id: str,
    kind: str = "lead",
    score: int = 72,
    factors: Sequence[dict[str, Any]] | None = None,
    risk_flags: Sequence[str] = (),
    next_action: str = "Call within 24 hours.",
    confidence: float = 0.7,
    review: ReviewDecision = "suggest",
    result_id: str | None = None,
    **fields: Any,
) -> EnrichmentResult:
    """``request_id`` scored ``score``, band and reasons as the spec's hooks derive them; one factor unless
    ``factors`` says; every output as sure as ``confidence`` and decided ``review``; meant for the CRM only for a lead
    (the spec's ``crm.where``). The result id is the enricher's: of the source event, the task, the prompt version."""
    factors = [factor("budget stated")] if factors is None else [dict(f) for f in factors]
    outputs: dict[str, Any] = {
        "score": score,
        "factors": factors,
        "risk_flags": list(risk_flags),
        "next_action": next_action,
        "band": band_for(score),
        "reasons": reasons_line(factors, risk_flags),
    }
    return EnrichmentResult(
        result_id=result_id or result_id_for(provenance.source_event_id, TASK, provenance.prompt_version),
        task=TASK,
        enrichment_version=1,
        review=review,
        provenance=provenance,
        record_id=request_id,
        to_crm=kind == "lead",
        outputs=outputs,
        confidence=dict.fromkeys(outputs, confidence),
        field_review=dict.fromkeys(outputs, review),
        **fields,
    )


def scored_event(result: EnrichmentResult, **envelope: Any) -> Envelope[EnrichmentResult]:
    """``result`` in the ``ai.enrichment.completed`` envelope the enricher sends to ``ai.request.scored``."""
    fields: dict[str, Any] = {"source": "crmpilot/enricher", "type": EVENT_TYPE, "schemaversion": 1}
    return Envelope[EnrichmentResult](**({"subject": result.record_id} | fields | envelope), data=result)
