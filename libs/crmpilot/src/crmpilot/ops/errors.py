"""Errors of the operator tools (:mod:`crmpilot.ops`), under :class:`crmpilot.errors.CrmpilotError`.

Kafka's and PostgreSQL's own exceptions are translated where they are raised
(``raise … from exc``); the CLI turns these into a message and an exit code.
"""

from __future__ import annotations

from crmpilot.errors import CrmpilotError

__all__ = [
    "OpsError",
    "BrokerUnavailable",
    "TopicNotFound",
    "GroupNotFound",
    "InvalidSelection",
    "ReplayStateError",
    "EventFileError",
]


class OpsError(CrmpilotError):
    """Base of the errors the operator tools raise."""


class BrokerUnavailable(OpsError):
    """The Kafka cluster did not answer (or refused an admin request) in time."""


class TopicNotFound(OpsError):
    """The topic does not exist on the cluster."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist")
        self.topic = topic


class GroupNotFound(OpsError):
    """The consumer group has no members and no committed offsets."""

    def __init__(self, group: str) -> None:
        super().__init__(f"consumer group {group} does not exist")
        self.group = group


class InvalidSelection(OpsError):
    """A record selection (``--offset``) that does not name records of the topic."""


class ReplayStateError(OpsError):
    """The replay group's committed offsets could not be read, understood or committed."""


class EventFileError(OpsError):
    """An events file that cannot be read or holds a line that is not a valid event."""
