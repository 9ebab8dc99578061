"""Classify one support case: case event in, ``ai.ticket.classified`` event out.

A case update is re-classified only when its subject or description changed.
The description is cut to a token budget (the cut is recorded in the result);
a case with nothing to read gets a typed skip result without a model call.
The LLM client (any provider) returns a validated output within the taxonomy;
this handler adds the deterministic result id, the review decision (the most
cautious of the per-field decisions) and the provenance, and emits the result
keyed by case id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmpilot.events import CaseEvent, Envelope, ReviewDecision, TicketClassification, result_id_for
from crmpilot.events.models import InputSkipped, cut_to_token_budget
from crmpilot.llm import LLMClient
from crmpilot.llm.base import TaskSpec
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span
from crmpilot.tasks.results import UnexpectedEventType, result_output, skipped_provenance, source_of
from crmpilot.tasks import FieldConfidence, TicketClassificationOutput, queue_for, review_decision, ticket_payload

SOURCE = "crmpilot/ticket_classifier"
CASE_TYPES = frozenset({"crm.case.created", "crm.case.updated"})
TEXT_FIELDS = frozenset({"Subject", "Description", "subject", "description"})
SKIPPED_CATEGORY = "Other"
_CAUTION: tuple[ReviewDecision, ...] = ("skip", "suggest", "auto_apply")


@dataclass(frozen=True, slots=True)
class TicketClassifier:
    llm: LLMClient
    spec: TaskSpec[TicketClassificationOutput]
    output_topic: str
    thresholds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {"category": (0.8, 0.5)})
    """Per confidence field: (auto-apply at or above, suggest at or above)."""
    max_input_tokens: int = 2000
    token_model: str = "gpt-4o-mini"

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id) as span:
            if envelope.type not in CASE_TYPES:
                raise UnexpectedEventType(f"{ctx.topic} carries case events, got {envelope.type!r}")
            case: CaseEvent = envelope.data
            if envelope.type == "crm.case.updated" and not TEXT_FIELDS & set(case.changed_fields):
                return ()
            source = source_of(envelope, ctx)
            result_id = result_id_for(envelope.id, self.spec.name, self.spec.prompt.version)
            skipped = InputSkipped.for_text(f"{case.subject}\n{case.description}", what="case")
            if skipped is not None:
                span.set_attribute("crmpilot.input.skipped", skipped.reason)
                result = self._skip(result_id, case, skipped, source)
            else:
                description, cut = cut_to_token_budget(case.description, self.max_input_tokens, self._count_tokens)
                if cut:
                    span.set_attribute("crmpilot.input.truncated_chars", cut)
                run = await self.llm.run(self.spec, ticket_payload(case.model_copy(update={"description": description})))
                out = run.output
                result = TicketClassification(
                    result_id=result_id,
                    review=self._review(out.confidence),
                    provenance=run.provenance(**source),
                    truncated_chars=cut,
                    case_id=case.case_id,
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
            return (result_output(self.output_topic, result, event_type="ai.ticket.classified", source=SOURCE, subject=case.case_id),)

    def _count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.token_model)

    def _review(self, confidence: FieldConfidence) -> ReviewDecision:
        """The most cautious decision of the fields that have thresholds."""
        scores = confidence.model_dump()
        decisions = [
            review_decision(scores[name], threshold_high=high, threshold_low=low)
            for name, (high, low) in self.thresholds.items()
        ]
        return min(decisions, key=_CAUTION.index)

    def _skip(self, result_id: str, case: CaseEvent, skipped: InputSkipped, source: dict[str, Any]) -> TicketClassification:
        return TicketClassification(
            result_id=result_id,
            review="skip",
            provenance=skipped_provenance(self.llm, self.spec, ticket_payload(case), source),
            skipped=skipped,
            case_id=case.case_id,
            category=SKIPPED_CATEGORY,
            priority="Low",
            sentiment="neutral",
            language="und",
            queue=queue_for(SKIPPED_CATEGORY, self.spec.output_model.taxonomy),
            confidence=dict.fromkeys(FieldConfidence.model_fields, 0.0),
            rationale=f"Not classified: {skipped.detail}.",
        )
