"""Summarize one customer email: email event in, ``ai.email.summarized`` event out.

The body is cut to a token budget (the cut is recorded in the result); an
email with nothing to read gets a typed skip result without a model call. The
LLM client returns a validated summary; this handler then checks every action
item quote and entity against the email as the model saw it (redacted): the
result is ``verified`` or lists what was not found, and an unverified result
is at most suggested for review, never applied as fact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmpilot.events import EmailReceived, EmailSummary, Envelope, ReviewDecision, result_id_for
from crmpilot.events.models import InputSkipped, cut_to_token_budget
from crmpilot.llm import LLMClient
from crmpilot.llm.base import TaskSpec
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span
from crmpilot.tasks.results import UnexpectedEventType, result_output, skipped_provenance, source_of
from crmpilot.tasks import EmailSummaryOutput, email_payload, grounding_failures, review_decision

SOURCE = "crmpilot/email_summarizer"
EMAIL_TYPES = frozenset({"crm.email.received"})


@dataclass(frozen=True, slots=True)
class EmailSummarizer:
    llm: LLMClient
    spec: TaskSpec[EmailSummaryOutput]
    output_topic: str
    max_words: int = 60
    max_input_tokens: int = 3000
    token_model: str = "gpt-4o-mini"
    threshold_high: float = 0.8
    threshold_low: float = 0.0

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id) as span:
            if envelope.type not in EMAIL_TYPES:
                raise UnexpectedEventType(f"{ctx.topic} carries email events, got {envelope.type!r}")
            email: EmailReceived = envelope.data
            source = source_of(envelope, ctx)
            result_id = result_id_for(envelope.id, self.spec.name, self.spec.prompt.version)
            skipped = InputSkipped.for_text(f"{email.subject}\n{email.body}", what="email")
            if skipped is not None:
                span.set_attribute("crmpilot.input.skipped", skipped.reason)
                result = self._skip(result_id, email, skipped, source)
            else:
                body, cut = cut_to_token_budget(email.body, self.max_input_tokens, self._count_tokens)
                if cut:
                    span.set_attribute("crmpilot.input.truncated_chars", cut)
                payload = email_payload(email.model_copy(update={"body": body}), max_words=self.max_words)
                run = await self.llm.run(self.spec, payload)
                out = run.output
                failures = grounding_failures(out, self._as_seen(payload))
                result = EmailSummary(
                    result_id=result_id,
                    review=self._review(out.confidence, verified=not failures),
                    provenance=run.provenance(**source),
                    truncated_chars=cut,
                    email_id=email.email_id,
                    case_id=email.case_id,
                    summary=out.summary,
                    intent=out.intent,
                    sentiment=out.sentiment,
                    urgency=out.urgency,
                    action_items=tuple(item.model_dump() for item in out.action_items),
                    entities=tuple(entity.model_dump() for entity in out.entities),
                    confidence=out.confidence,
                    verified=not failures,
                    grounding_failures=failures,
                )
            return (result_output(self.output_topic, result, event_type="ai.email.summarized", source=SOURCE, subject=email.case_id or email.email_id),)

    def _count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.token_model)

    def _as_seen(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload as the model saw it: redacted exactly as the client redacts it."""
        return self.llm.redactor.redact(dict(payload)).payload if self.llm.redactor else dict(payload)

    def _review(self, confidence: float, *, verified: bool) -> ReviewDecision:
        review = review_decision(confidence, threshold_high=self.threshold_high, threshold_low=self.threshold_low)
        return "suggest" if review == "auto_apply" and not verified else review

    def _skip(self, result_id: str, email: EmailReceived, skipped: InputSkipped, source: dict[str, Any]) -> EmailSummary:
        payload = email_payload(email, max_words=self.max_words)
        return EmailSummary(
            result_id=result_id,
            review="skip",
            provenance=skipped_provenance(self.llm, self.spec, payload, source),
            skipped=skipped,
            email_id=email.email_id,
            case_id=email.case_id,
            summary="",
            intent="other",
            sentiment="neutral",
            urgency="low",
            verified=True,
        )
