"""Classify one support case: case event in, ``ai.ticket.classified`` event out.

The steps are the one enrichment pipeline's (:class:`~crmpilot.enrichments.pipeline.Pipeline`);
this adapter says what a case gives the task and what the result holds. A case
update is re-classified only when its subject or description changed; the
description has a token budget; the result's review is the most cautious of the
per-field decisions (thresholds per confidence field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crmpilot.enrichments.pipeline import Reading, Run, TaskPipeline
from crmpilot.enrichments.results import review_decision
from crmpilot.events import CaseEvent, Envelope, ReviewDecision, TicketClassification
from crmpilot.events.models import InputSkipped
from crmpilot.tasks import FieldConfidence, TicketClassificationOutput, queue_for, ticket_payload

SOURCE = "crmpilot/ticket_classifier"
CASE_TYPES = frozenset({"crm.case.created", "crm.case.updated"})
TEXT_FIELDS = frozenset({"Subject", "Description", "subject", "description"})
SKIPPED_CATEGORY = "Other"
_CAUTION: tuple[ReviewDecision, ...] = ("skip", "suggest", "auto_apply")


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketClassifier(TaskPipeline[TicketClassification]):
    thresholds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {"category": (0.8, 0.5)})
    """Per confidence field: (auto-apply at or above, suggest at or above)."""
    max_input_tokens: int = 2000

    event_types = CASE_TYPES
    result_type = "ai.ticket.classified"
    source = SOURCE

    def read(self, envelope: Envelope[Any]) -> Reading | None:
        case: CaseEvent = envelope.data
        if envelope.type == "crm.case.updated" and not TEXT_FIELDS & set(case.changed_fields):
            return None
        skipped = InputSkipped.for_text(f"{case.subject}\n{case.description}", what="case")
        return Reading(
            key=case.case_id,
            payload=ticket_payload(case),
            skipped=skipped,
            budgets={"description": self.max_input_tokens},
            about=case,
        )

    def completed(self, run: Run) -> TicketClassification:
        out: TicketClassificationOutput = run.output
        return TicketClassification(
            **run.header,
            review=self._review(out.confidence),
            case_id=run.reading.about.case_id,
            category=out.category,
            priority=out.priority,
            sentiment=out.sentiment,
            language=out.language,
            queue=out.queue,
            escalate=out.escalate,
            escalation_reason=out.escalation_reason,
            confidence=out.confidence.model_dump(),
            rationale=out.rationale,
        )

    def _review(self, confidence: FieldConfidence) -> ReviewDecision:
        """The most cautious decision of the fields that have thresholds."""
        scores = confidence.model_dump()
        decisions = [
            review_decision(scores[name], threshold_high=high, threshold_low=low)
            for name, (high, low) in self.thresholds.items()
        ]
        return min(decisions, key=_CAUTION.index)

    def skipped(self, run: Run) -> TicketClassification:
        skipped = run.reading.skipped
        assert skipped is not None
        return TicketClassification(
            **run.header,
            case_id=run.reading.about.case_id,
            category=SKIPPED_CATEGORY,
            priority="Low",
            sentiment="neutral",
            language="und",
            queue=queue_for(SKIPPED_CATEGORY, self.spec.output_model.taxonomy),
            confidence=dict.fromkeys(FieldConfidence.model_fields, 0.0),
            rationale=f"Not classified: {skipped.detail}.",
        )
