"""Score one incoming request or lead: request event in, ``ai.request.scored`` event out.

The steps are the one enrichment pipeline's (:class:`~crmpilot.enrichments.pipeline.Pipeline`);
this adapter says what a request gives the task and what the result holds.
The model reads the structured fields and the description (cut to a token
budget; the cut is recorded in the result) and returns a score with its
factors, risk flags, next action and confidence; the confidence decides the
review. A request with nothing to score (no readable description and no
company, contact, size or amount) gets a typed skip result without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmpilot.enrichments.pipeline import Reading, Run, TaskPipeline
from crmpilot.enrichments.results import review_decision
from crmpilot.events import Envelope, RequestScore, RequestSubmitted
from crmpilot.events.models import InputSkipped, ScoreFactor
from crmpilot.tasks import RequestScoreOutput, request_payload

SOURCE = "crmpilot/request_scorer"
REQUEST_TYPES = frozenset({"erp.request.submitted"})


def skip_for(request: RequestSubmitted) -> InputSkipped | None:
    """Why ``request`` cannot be scored, or None: an unreadable description, or no information at all."""
    problem = InputSkipped.for_text(request.description, what="request description")
    if problem is None or problem.reason == "non_text_input":
        return problem
    if request.company.strip() or request.contact_email or request.employees is not None or request.amount is not None:
        return None  # no description: the fields alone are scored
    return InputSkipped(
        reason="empty_input", detail="the request is empty: no description, company, contact, size or amount"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestScorer(TaskPipeline[RequestScore]):
    max_input_tokens: int = 1500
    threshold_high: float = 0.8
    threshold_low: float = 0.5

    event_types = REQUEST_TYPES
    result_type = "ai.request.scored"
    source = SOURCE

    def read(self, envelope: Envelope[Any]) -> Reading:
        request: RequestSubmitted = envelope.data
        return Reading(
            key=request.request_id,
            payload=request_payload(request),
            skipped=skip_for(request),
            budgets={"description": self.max_input_tokens},
            about=request,
        )

    def completed(self, run: Run) -> RequestScore:
        out: RequestScoreOutput = run.output
        return RequestScore(
            **run.header,
            review=review_decision(
                out.confidence, threshold_high=self.threshold_high, threshold_low=self.threshold_low
            ),
            request_id=run.reading.about.request_id,
            kind=run.reading.about.kind,
            score=out.score,
            band=out.band,
            factors=tuple(ScoreFactor.model_validate(factor.model_dump()) for factor in out.factors),
            risk_flags=out.risk_flags,
            next_action=out.next_action,
            confidence=out.confidence,
        )

    def skipped(self, run: Run) -> RequestScore:
        skipped = run.reading.skipped
        assert skipped is not None
        return RequestScore(
            **run.header,
            request_id=run.reading.about.request_id,
            kind=run.reading.about.kind,
            score=0,
            band="cold",
            risk_flags=("incomplete",),
            next_action=f"Not scored: {skipped.detail}. Ask the requester for the missing details.",
        )
