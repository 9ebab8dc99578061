"""Errors raised while decoding events: all are poison (retrying cannot help)."""

from __future__ import annotations

from crmpilot.errors import Permanent

__all__ = [
    "PoisonMessage",
    "InvalidEncoding",
    "InvalidJSON",
    "InvalidPayload",
    "OversizePayload",
    "FutureTimestamp",
    "UnknownEventType",
    "UnknownSchemaVersion",
]


class PoisonMessage(Permanent):
    """A record that can never be processed; it goes to the dead-letter topic."""

    code: str | None = "poison"
    """The error's code in the dead-letter headers; a subclass may have none (``CRMRejected`` without the CRM's)."""


class InvalidEncoding(PoisonMessage):
    code = "invalid_encoding"


class InvalidJSON(PoisonMessage):
    code = "invalid_json"


class OversizePayload(PoisonMessage):
    code = "oversize_payload"


class InvalidPayload(PoisonMessage):
    code = "invalid_payload"


class FutureTimestamp(InvalidPayload):
    """The event claims to have happened later than the allowed clock skew from now."""

    code = "future_timestamp"


class UnknownEventType(PoisonMessage):
    code = "unknown_event_type"


class UnknownSchemaVersion(PoisonMessage):
    code = "unknown_schema_version"
