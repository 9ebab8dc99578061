"""One trace per event: continue the producer's W3C trace context in a ``process {topic}`` span.

The handler of every service runs inside :func:`process_span`, whose parent is
the ``traceparent`` header of the record, so the source event, the LLM call and
every sink share one trace id. :func:`trace_headers` puts the current context on
the records a handler produces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from .context import Header, MessageContext

__all__ = ["process_span", "trace_headers", "current_trace_id"]


@contextmanager
def process_span(ctx: MessageContext, *, event_id: str | None = None) -> Iterator[Span]:
    carrier = {}
    if ctx.traceparent:
        carrier["traceparent"] = ctx.traceparent
        if ctx.tracestate:
            carrier["tracestate"] = ctx.tracestate
    parent = propagate.extract(carrier)
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": ctx.topic,
        "messaging.destination.partition.id": str(ctx.partition),
        "messaging.kafka.offset": ctx.offset,
        "messaging.consumer.group.name": ctx.group_id,
    }
    if ctx.key is not None:
        attributes["messaging.kafka.message.key"] = ctx.key.decode("utf-8", "replace")
    if event_id:
        attributes["messaging.message.id"] = event_id
    with trace.get_tracer("crmpilot.streaming").start_as_current_span(
        f"process {ctx.topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def trace_headers() -> tuple[Header, ...]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((k, v.encode("ascii")) for k, v in carrier.items())


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
