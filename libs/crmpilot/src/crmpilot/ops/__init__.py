"""crmpilot.ops: what the on-call engineer runs, as a library (the ``crmpilot`` CLI is a thin layer on it).

- :mod:`.lag` — committed vs end offsets per partition, as Kafka's consumer-groups tool reports them.
- :mod:`.status` — Kafka, topics, groups and service readiness in one report.
- :mod:`.dlq` / :mod:`.replay` / :mod:`.replay_book` — read dead-letter topics; replay them once, never in a loop.
- :mod:`.samples` / :mod:`.produce` / :mod:`.sender` — send events, each in a ``send {topic}`` span.
- :mod:`.trail` — where one event went, from the warehouse.

Errors are :class:`~crmpilot.ops.errors.OpsError` subclasses.
"""

from .errors import (
    BrokerUnavailable,
    EventFileError,
    GroupNotFound,
    InvalidSelection,
    OpsError,
    ReplayStateError,
    TopicNotFound,
)
from .settings import OpsSettings

__all__ = [
    "BrokerUnavailable",
    "EventFileError",
    "GroupNotFound",
    "InvalidSelection",
    "OpsError",
    "OpsSettings",
    "ReplayStateError",
    "TopicNotFound",
]
