"""Classify one support case: case event in, ``ai.ticket.classified`` event out.

A case update is re-classified only when its subject or description changed.
The LLM client (any provider) returns a validated output within the taxonomy;
this handler adds the deterministic result id, the review decision and the
provenance, and emits the result keyed by case id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crmpilot.events import CaseEvent, Envelope, PoisonMessage, TicketClassification, result_id_for
from crmpilot.llm import LLMClient
from crmpilot.llm.base import TaskSpec
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span, trace_headers
from crmpilot.tasks import TicketClassificationOutput, review_decision, ticket_payload

SOURCE = "crmpilot/ticket_classifier"
CASE_TYPES = frozenset({"crm.case.created", "crm.case.updated"})
TEXT_FIELDS = frozenset({"Subject", "Description", "subject", "description"})


class UnexpectedEventType(PoisonMessage):
    code = "unexpected_event_type"


@dataclass(frozen=True, slots=True)
class TicketClassifier:
    llm: LLMClient
    spec: TaskSpec[TicketClassificationOutput]
    output_topic: str
    threshold_high: float = 0.8
    threshold_low: float = 0.5

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id):
            if envelope.type not in CASE_TYPES:
                raise UnexpectedEventType(f"{ctx.topic} carries case events, got {envelope.type!r}")
            case: CaseEvent = envelope.data
            if envelope.type == "crm.case.updated" and not TEXT_FIELDS & set(case.changed_fields):
                return ()
            run = await self.llm.run(self.spec, ticket_payload(case))
            out = run.output
            result = TicketClassification(
                result_id=result_id_for(envelope.id, self.spec.name, self.spec.prompt.version),
                review=review_decision(out.confidence.category, threshold_high=self.threshold_high, threshold_low=self.threshold_low),
                provenance=run.provenance(
                    source_topic=ctx.topic,
                    source_partition=ctx.partition,
                    source_offset=ctx.offset,
                    source_event_id=envelope.id,
                    event_time=envelope.time,
                ),
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
            event = Envelope[TicketClassification](
                id=result.result_id,
                source=SOURCE,
                type="ai.ticket.classified",
                schemaversion=1,
                subject=case.case_id,
                time=datetime.now(UTC),
                data=result,
            )
            return (Output.event(self.output_topic, event, headers=trace_headers()),)
