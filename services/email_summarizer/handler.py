"""Summarize one customer email: email event in, ``ai.email.summarized`` event out.

The steps are the one enrichment pipeline's (:class:`~crmpilot.enrichments.pipeline.Pipeline`);
this adapter says what an email gives the task and what the result holds. The
body has a token budget. The client puts redacted values back into the summary,
its action items and entities; then every quote and entity value is checked
against the original email (subject or body, exact substrings): the result is
``verified`` or lists what was not found, and an unverified result is at most
suggested for review, never applied as fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmpilot.enrichments.pipeline import Reading, Run, TaskPipeline
from crmpilot.enrichments.results import review_decision
from crmpilot.events import EmailReceived, EmailSummary, Envelope, ReviewDecision
from crmpilot.events.models import ActionItem, Entity, InputSkipped
from crmpilot.tasks import EmailSummaryOutput, email_payload, grounding_failures

SOURCE = "crmpilot/email_summarizer"
EMAIL_TYPES = frozenset({"crm.email.received"})


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailSummarizer(TaskPipeline[EmailSummary]):
    max_words: int = 60
    max_input_tokens: int = 3000
    threshold_high: float = 0.8
    threshold_low: float = 0.0

    event_types = EMAIL_TYPES
    result_type = "ai.email.summarized"
    source = SOURCE

    def read(self, envelope: Envelope[Any]) -> Reading:
        email: EmailReceived = envelope.data
        return Reading(
            key=email.case_id or email.email_id,
            payload=email_payload(email, max_words=self.max_words),
            skipped=InputSkipped.for_text(f"{email.subject}\n{email.body}", what="email"),
            budgets={"body": self.max_input_tokens},
            about=email,
        )

    def completed(self, run: Run) -> EmailSummary:
        out: EmailSummaryOutput = run.output
        email: EmailReceived = run.reading.about
        failures = grounding_failures(out, run.payload)
        return EmailSummary(
            **run.header,
            review=self._review(out.confidence, verified=not failures),
            email_id=email.email_id,
            case_id=email.case_id,
            summary=out.summary,
            intent=out.intent,
            sentiment=out.sentiment,
            urgency=out.urgency,
            action_items=tuple(ActionItem.model_validate(item.model_dump()) for item in out.action_items),
            entities=tuple(Entity.model_validate(entity.model_dump()) for entity in out.entities),
            confidence=out.confidence,
            verified=not failures,
            grounding_failures=failures,
        )

    def _review(self, confidence: float, *, verified: bool) -> ReviewDecision:
        review = review_decision(confidence, threshold_high=self.threshold_high, threshold_low=self.threshold_low)
        return "suggest" if review == "auto_apply" and not verified else review

    def skipped(self, run: Run) -> EmailSummary:
        email: EmailReceived = run.reading.about
        return EmailSummary(
            **run.header,
            email_id=email.email_id,
            case_id=email.case_id,
            summary="",
            intent="other",
            sentiment="neutral",
            urgency="low",
            verified=True,
        )
