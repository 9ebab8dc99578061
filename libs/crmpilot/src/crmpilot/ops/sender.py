"""Producing from the operator tools, one ``send {topic}`` PRODUCER span per record.

:class:`TracedProducer` wraps confluent-kafka's idempotent ``Producer``
(``acks=all``): each record gets a span following the messaging conventions
(``messaging.system=kafka``, destination, key, message id; partition and offset
once acknowledged) whose W3C context is put in the record's ``traceparent``
header, so the consumers' ``process`` spans continue the same trace. A record
that already carries a ``traceparent`` (a dead letter being replayed) gets a
span *inside* that trace, so a replay shows up in the event's original trace
(without a tracer provider installed, the API's no-op span carries the record's
own context, so its ``traceparent`` is kept as it was).
Deliveries are reported through a callback as they are acknowledged (progress
bars); :meth:`TracedProducer.flush` waits for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from crmpilot.settings import KafkaSettings
from crmpilot.streaming.context import TRACEPARENT, TRACESTATE, Header
from crmpilot.streaming.producer import event_producer_config

from .broker import unavailable

__all__ = ["Sent", "TracedProducer"]


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of one produced record; ``error`` is None once the broker acknowledged it."""

    topic: str
    partition: int
    offset: int
    trace_id: str | None
    error: str | None
    token: Any = None


class TracedProducer:
    """Send records with a producer span each; ``on_sent`` is called as each is acknowledged or fails."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str,
        tracer: Tracer | None = None,
        on_sent: Callable[[Sent], None] | None = None,
    ) -> None:
        self._producer = Producer(event_producer_config(kafka, client_id))
        self._tracer = tracer or trace.get_tracer("crmpilot.ops")
        self._on_sent = on_sent
        self.sent: list[Sent] = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
        *,
        partition: int | None = None,
        message_id: str | None = None,
        token: Any = None,
    ) -> None:
        """Queue one record (to ``partition``, else the key's); ``headers`` keep their order,
        ``traceparent``/``tracestate`` are replaced by the span's."""
        carrier = {k: v.decode("ascii", "replace") for k, v in headers if k in (TRACEPARENT, TRACESTATE) and v}
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
        }
        if key is not None:
            attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
        if message_id:
            attributes["messaging.message.id"] = message_id
        span = self._tracer.start_span(
            f"send {topic}", context=propagate.extract(carrier), kind=SpanKind.PRODUCER, attributes=attributes
        )
        outgoing: dict[str, str] = {}
        propagate.inject(outgoing, context=trace.set_span_in_context(span))
        kept = [(k, v) for k, v in headers if k not in (TRACEPARENT, TRACESTATE)]
        kept += [(k, v.encode("ascii")) for k, v in outgoing.items() if k in (TRACEPARENT, TRACESTATE)]
        ctx = span.get_span_context()
        trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self._settle(span, topic, trace_id, token, err, msg)

        while True:
            try:
                self._producer.produce(
                    topic, value, key, -1 if partition is None else partition,  # -1: the key's partition
                    headers=cast(list[tuple[str, str | bytes | None]], kept), on_delivery=delivered,
                )  # fmt: skip
                return
            except BufferError:  # local queue full: serve acknowledgements, then try again
                self._producer.poll(0.1)
            except KafkaException as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.end()
                raise unavailable(f"producing to {topic}", exc) from exc

    def _settle(
        self, span: Span, topic: str, trace_id: str | None, token: Any, err: KafkaError | None, msg: Message
    ) -> None:
        if err is None:
            partition, offset = msg.partition() or 0, msg.offset() or 0
            span.set_attribute("messaging.destination.partition.id", str(partition))
            span.set_attribute("messaging.kafka.offset", offset)
            sent = Sent(topic, partition, offset, trace_id, None, token)
        else:
            span.set_attribute("error.type", err.name())
            span.set_status(Status(StatusCode.ERROR, err.str()))
            sent = Sent(topic, -1, -1, trace_id, f"{err.name()}: {err.str()}", token)
        span.end()
        self.sent.append(sent)
        if self._on_sent is not None:
            self._on_sent(sent)

    def poll(self) -> None:
        """Serve the acknowledgements that arrived (callbacks run here)."""
        self._producer.poll(0)

    def flush(self, timeout: float) -> int:
        """Wait for every acknowledgement; return how many records are still unacknowledged."""
        return int(self._producer.flush(timeout))
