"""Errors of the streaming runtime, under :class:`crmpilot.errors.CrmpilotError`.

Kafka's own errors (``KafkaException``/``KafkaError``) are translated here, at the
edge, into crmpilot's traits so the runtime can act on them:

- :class:`DeliveryFailed` (:class:`~crmpilot.errors.Retryable`): the broker did not
  acknowledge a record in time; the work may be retried.
- :class:`ProducerFatal` (:class:`~crmpilot.errors.Fatal`): librdkafka reports a fatal
  producer error (e.g. the idempotent producer was fenced); the process must stop.
- :class:`DeadLetterFailed` (:class:`~crmpilot.errors.Fatal`): a record could not be
  moved to its dead-letter topic; its offset cannot be committed, so the service stops.
- :class:`TopicAdminError`: creating or altering topics failed.
- :class:`MissingTopics` (:class:`~crmpilot.errors.Fatal`): a topic the service
  reads, or its dead-letter twin, does not exist; checked at start.
- :class:`ConsumerFatal` (:class:`~crmpilot.errors.Fatal`): the consumer reported a fatal error.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from crmpilot.errors import CrmpilotError, Fatal, Retryable

__all__ = [
    "StreamingError",
    "DeliveryFailed",
    "ProducerFatal",
    "DeadLetterFailed",
    "ConsumerFatal",
    "TopicAdminError",
    "MissingTopics",
    "delivery_error",
]


class StreamingError(CrmpilotError):
    """Base of the errors raised by :mod:`crmpilot.streaming`."""


class DeliveryFailed(StreamingError, Retryable):
    """The broker did not acknowledge a produced record (timeout, broker down…)."""

    def __init__(self, message: str, *, code: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.code = code


class ProducerFatal(StreamingError, Fatal):
    """librdkafka raised a fatal producer error; no further record can be produced."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class DeadLetterFailed(StreamingError, Fatal):
    """A record could not be dead-lettered; its offset must not be committed."""

    code = "dead_letter_failed"


class ConsumerFatal(StreamingError, Fatal):
    """The consumer reported a fatal error (e.g. fenced static member)."""

    code = "consumer_fatal"


class TopicAdminError(StreamingError):
    """Creating, describing or altering topics failed."""

    code = "topic_admin"


class MissingTopics(StreamingError, Fatal):
    """Topics the service needs do not exist (create them with ``crmpilot topics apply``)."""

    code = "missing_topics"

    def __init__(self, topics: list[str]) -> None:
        super().__init__(f"missing topic(s): {', '.join(topics)}; create them with `crmpilot topics apply`")
        self.topics = topics


def delivery_error(err: KafkaError, topic: str) -> DeliveryFailed | ProducerFatal:
    """Translate a delivery-report error into the runtime's error traits."""
    message = f"producing to {topic} failed: {err.name()}: {err.str()}"
    if err.fatal():
        return ProducerFatal(message, code=err.name())
    return DeliveryFailed(message, code=err.name())
