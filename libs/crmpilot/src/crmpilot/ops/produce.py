"""``crmpilot produce``: send events to a topic, each in its own ``send {topic}`` span.

The topic must exist (a producer would otherwise wait for it until it times
out). Records are what every crmpilot producer sends (:meth:`Output.event`):
keyed by subject, JSON envelope, content-type header, W3C ``traceparent``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.trace import Tracer

from crmpilot.events import Envelope
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import Output

from .broker import admin_client, describe_cluster
from .errors import BrokerUnavailable, TopicNotFound
from .sender import Sent, TracedProducer

__all__ = ["produce_envelopes"]


def produce_envelopes(
    kafka: KafkaSettings,
    topic: str,
    envelopes: Sequence[Envelope[Any]],
    *,
    timeout: float,
    tracer: Tracer | None = None,
    on_sent: Callable[[Sent], None] | None = None,
) -> list[Sent]:
    """Send ``envelopes`` to ``topic``; return one :class:`Sent` per envelope, in order."""
    if topic not in describe_cluster(admin_client(kafka, "produce"), kafka.bootstrap, timeout).topics:
        raise TopicNotFound(topic)
    producer = TracedProducer(kafka, client_id="ops-produce", tracer=tracer, on_sent=on_sent)
    for index, envelope in enumerate(envelopes):
        out = Output.event(topic, envelope)
        producer.send(out.topic, out.key, out.value, out.headers, message_id=envelope.id, token=index)
        producer.poll()
    left = producer.flush(timeout)
    if left:
        raise BrokerUnavailable(f"{left} of {len(envelopes)} record(s) to {topic} not acknowledged within {timeout:g}s")
    return sorted(producer.sent, key=lambda s: s.token)
