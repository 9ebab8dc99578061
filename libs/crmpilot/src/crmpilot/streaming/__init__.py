"""crmpilot's Kafka layer: the consumer runtime services run on, producing, topics.

- :class:`ConsumerService` + :class:`RuntimeSettings`: consume a group's topics,
  call ``async def handle(envelope, ctx) -> Sequence[Output]``, produce outputs,
  commit the contiguous watermark, retry / dead-letter / stop by error trait.
  :class:`GroupMembershipSettings`: the group-membership settings services read
  from their environment (session timeout, heartbeat, poll interval, static
  membership, liveness timeout; :mod:`crmpilot.streaming.liveness`).
- :class:`Output`, :class:`MessageContext`, :data:`Handler`: the handler's contract.
- :class:`LifecycleServer`, :class:`ServiceStatus`: ``/healthz``, ``/readyz``, ``/metrics``
  (:mod:`crmpilot.streaming.metrics` lists the metrics).
- :class:`EventProducer`, :func:`produce_events`: send envelopes keyed by subject.
- :func:`load_topics`, :func:`apply_topics`: the declared topics and their DLQ twins.
"""

from .config import GroupMembershipSettings, Ordering, RuntimeSettings
from .context import SOURCE_EVENT_ID, Handler, Header, MessageContext, Output
from .dlq import DLQ_HEADERS
from .errors import (
    ConsumerFatal,
    DeadLetterFailed,
    DeliveryFailed,
    MissingTopics,
    ProducerFatal,
    StreamingError,
    TopicAdminError,
)
from .lifecycle import LifecycleServer, ServiceStatus
from .producer import Delivery, EventProducer, produce_events
from .runtime import ConsumerService, ServiceStats
from .topics import TopicChange, TopicSpec, apply_topics, load_topics

__all__ = [
    "DLQ_HEADERS",
    "ConsumerFatal",
    "ConsumerService",
    "DeadLetterFailed",
    "Delivery",
    "DeliveryFailed",
    "EventProducer",
    "GroupMembershipSettings",
    "Handler",
    "Header",
    "LifecycleServer",
    "MessageContext",
    "MissingTopics",
    "Ordering",
    "Output",
    "ProducerFatal",
    "RuntimeSettings",
    "SOURCE_EVENT_ID",
    "ServiceStats",
    "ServiceStatus",
    "StreamingError",
    "TopicAdminError",
    "TopicChange",
    "TopicSpec",
    "apply_topics",
    "load_topics",
    "produce_events",
]
