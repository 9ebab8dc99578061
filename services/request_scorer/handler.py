"""Score one incoming request or lead: request event in, ``ai.request.scored`` event out.

The model reads the structured fields and the description (cut to a token
budget; the cut is recorded in the result) and returns a score with its
factors, risk flags, next action and confidence; the confidence decides the
review. A request with nothing to score (no readable description and no
company, contact, size or amount) gets a typed skip result without a model call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmpilot.events import Envelope, RequestScore, RequestSubmitted, result_id_for
from crmpilot.events.models import InputSkipped, cut_to_token_budget
from crmpilot.llm import LLMClient
from crmpilot.llm.base import TaskSpec
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span
from crmpilot.tasks.results import UnexpectedEventType, result_output, skipped_provenance, source_of
from crmpilot.tasks import RequestScoreOutput, request_payload, review_decision

SOURCE = "crmpilot/request_scorer"
REQUEST_TYPES = frozenset({"erp.request.submitted"})


def skip_for(request: RequestSubmitted) -> InputSkipped | None:
    """Why ``request`` cannot be scored, or None: an unreadable description, or no information at all."""
    problem = InputSkipped.for_text(request.description, what="request description")
    if problem is None or problem.reason == "non_text_input":
        return problem
    if request.company.strip() or request.contact_email or request.employees is not None or request.amount is not None:
        return None  # no description: the fields alone are scored
    return InputSkipped(reason="empty_input", detail="the request is empty: no description, company, contact, size or amount")


@dataclass(frozen=True, slots=True)
class RequestScorer:
    llm: LLMClient
    spec: TaskSpec[RequestScoreOutput]
    output_topic: str
    max_input_tokens: int = 1500
    token_model: str = "gpt-4o-mini"
    threshold_high: float = 0.8
    threshold_low: float = 0.5

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id) as span:
            if envelope.type not in REQUEST_TYPES:
                raise UnexpectedEventType(f"{ctx.topic} carries request events, got {envelope.type!r}")
            request: RequestSubmitted = envelope.data
            source = source_of(envelope, ctx)
            result_id = result_id_for(envelope.id, self.spec.name, self.spec.prompt.version)
            skipped = skip_for(request)
            if skipped is not None:
                span.set_attribute("crmpilot.input.skipped", skipped.reason)
                result = self._skip(result_id, request, skipped, source)
            else:
                description, cut = cut_to_token_budget(request.description, self.max_input_tokens, self._count_tokens)
                if cut:
                    span.set_attribute("crmpilot.input.truncated_chars", cut)
                run = await self.llm.run(self.spec, request_payload(request.model_copy(update={"description": description})))
                out = run.output
                result = RequestScore(
                    result_id=result_id,
                    review=review_decision(out.confidence, threshold_high=self.threshold_high, threshold_low=self.threshold_low),
                    provenance=run.provenance(**source),
                    truncated_chars=cut,
                    request_id=request.request_id,
                    kind=request.kind,
                    score=out.score,
                    band=out.band,
                    factors=tuple(factor.model_dump() for factor in out.factors),
                    risk_flags=out.risk_flags,
                    next_action=out.next_action,
                    confidence=out.confidence,
                )
            return (result_output(self.output_topic, result, event_type="ai.request.scored", source=SOURCE, subject=request.request_id),)

    def _count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.token_model)

    def _skip(self, result_id: str, request: RequestSubmitted, skipped: InputSkipped, source: dict[str, Any]) -> RequestScore:
        return RequestScore(
            result_id=result_id,
            review="skip",
            provenance=skipped_provenance(self.llm, self.spec, request_payload(request), source),
            skipped=skipped,
            request_id=request.request_id,
            kind=request.kind,
            score=0,
            band="cold",
            risk_flags=("incomplete",),
            next_action=f"Not scored: {skipped.detail}. Ask the requester for the missing details.",
        )
