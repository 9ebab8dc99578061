"""What every enrichment's result shares: its source, its event, its review decision.

- :func:`source_of`: where a result comes from (topic, partition, offset, event id, time),
  the provenance fields every result carries;
- :func:`result_output`: a result as its ``ai.*`` event, keyed by the entity, with the trace;
- :func:`skipped_provenance`: provenance of a result that asked no model (an empty or
  non-text input); it still names the prompt it would have used and the hash of the
  (redacted) input, so the warehouse row says exactly what was skipped;
- :func:`review_decision`: whether a result (or one field of it) is applied, suggested for
  review, or skipped: a pure function of a confidence and two thresholds, so the CRM
  writer and the warehouse, reading the same result event, see the same decision;
- :class:`UnexpectedEventType`: a record of the wrong type on a service's input topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crmpilot.events import Envelope, PoisonMessage
from crmpilot.events.models import Provenance, ReviewDecision
from crmpilot.llm import LLMClient, input_hash
from crmpilot.llm.base import TaskSpec
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import current_trace_id, trace_headers

__all__ = [
    "DEFAULT_THRESHOLD_HIGH",
    "DEFAULT_THRESHOLD_LOW",
    "UnexpectedEventType",
    "result_output",
    "review_decision",
    "skipped_provenance",
    "source_of",
    "token_model",
]

DEFAULT_THRESHOLD_HIGH = 0.8
"""At or above: written to the CRM field as fact."""
DEFAULT_THRESHOLD_LOW = 0.5
"""At or above (and below high): written as a suggestion flagged for review."""


class UnexpectedEventType(PoisonMessage):
    code = "unexpected_event_type"


def source_of(envelope: Envelope[Any], ctx: MessageContext) -> dict[str, Any]:
    """The source fields of a result's provenance."""
    return {
        "source_topic": ctx.topic,
        "source_partition": ctx.partition,
        "source_offset": ctx.offset,
        "source_event_id": envelope.id,
        "event_time": envelope.time,
    }


def result_output(topic: str, result: Any, *, event_type: str, source: str, subject: str) -> Output:
    """``result`` as a version-1 ``event_type`` event (id = result id) on ``topic``, with the current trace."""
    event = Envelope[type(result)](  # type: ignore[misc, operator]  # the data model is only known at run time
        id=result.result_id,
        source=source,
        type=event_type,
        schemaversion=1,
        subject=subject,
        time=datetime.now(UTC),
        data=result,
    )
    return Output.event(topic, event, headers=trace_headers())


def skipped_provenance(
    llm: LLMClient, spec: TaskSpec[Any], payload: Mapping[str, Any], source: Mapping[str, Any]
) -> Provenance:
    """``source``: the source topic, partition, offset, event id and event time of the result."""
    seen = llm.redactor.redact(dict(payload)).payload if llm.redactor else dict(payload)
    return Provenance.without_model_call(
        prompt_id=spec.prompt.id,
        prompt_version=spec.prompt.version,
        prompt_hash=spec.prompt.hash,
        input_hash=input_hash(seen),
        trace_id=current_trace_id(),
        processed_at=datetime.now(UTC),
        **source,
    )


def token_model(llm: LLMClient) -> str:
    """The model whose tokenizer counts an input's token budget: the first provider's model (or its name)."""
    first = llm.providers[0]
    return str(getattr(first, "model", None) or first.name)


def review_decision(
    confidence: float,
    *,
    threshold_high: float = DEFAULT_THRESHOLD_HIGH,
    threshold_low: float = DEFAULT_THRESHOLD_LOW,
) -> ReviewDecision:
    """``auto_apply`` if ``confidence >= threshold_high``, ``suggest`` if ``>= threshold_low``, else ``skip``."""
    if not 0.0 <= threshold_low <= threshold_high <= 1.0:
        raise ValueError(f"need 0 <= threshold_low <= threshold_high <= 1, got {threshold_low}, {threshold_high}")
    if confidence >= threshold_high:
        return "auto_apply"
    if confidence >= threshold_low:
        return "suggest"
    return "skip"
