"""The event envelope: CloudEvents-style metadata around a typed payload.

Every record on a crmpilot topic is one JSON envelope. ``type`` names the event
(``crm.case.created``), ``schemaversion`` its payload version, ``subject`` the
entity it is about (also the Kafka key), ``data`` the payload. Decoding is strict:
a record that is not UTF-8, not JSON, too large, of an unknown type or version,
or whose payload does not match its model, raises a typed :class:`PoisonMessage`.

Times: every datetime of an event must carry a UTC offset (a naive time cannot
be compared with the CRM's ``LastModifiedDate``), and the envelope's ``time``
may be at most :data:`MAX_FUTURE_SKEW` ahead of the consumer's clock (Kafka's
own default for ``message.timestamp.after.max.ms``): a time far in the future
would make every later edit by a person look older than the event, and let
the CRM writer overwrite it. Such records are refused as poison.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import FutureTimestamp, InvalidEncoding, InvalidJSON, InvalidPayload, OversizePayload

__all__ = ["Envelope", "DEFAULT_MAX_BYTES", "MAX_FUTURE_SKEW", "decode", "encode", "new_event_id"]

DEFAULT_MAX_BYTES = 256 * 1024
# Defaults exist for building new events in code; a record read from a topic must carry these.
_REQUIRED_ON_THE_WIRE = ("id", "time")
MAX_FUTURE_SKEW = timedelta(hours=1)

P = TypeVar("P", bound=BaseModel)


def new_event_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    """One event: CloudEvents 1.0 attributes plus our ``schemaversion``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: str = "1.0"
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=200)
    source: str = Field(
        min_length=1, max_length=500, description="producer, e.g. crm://salesforce/org-1 or crmpilot/ticket_classifier"
    )
    type: str = Field(min_length=1, max_length=200, description="event type, e.g. crm.case.created")
    schemaversion: int = Field(ge=1, description="version of the payload schema for this type")
    time: datetime = Field(default_factory=_now, description="when the fact happened at the source")
    subject: str = Field(min_length=1, max_length=200, description="entity id the event is about; the Kafka key")
    datacontenttype: str = "application/json"
    data: P


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def decode(
    raw: bytes | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_future_skew: timedelta = MAX_FUTURE_SKEW,
    now: datetime | None = None,
) -> Envelope[Any]:
    """Parse and validate one record value into its typed envelope.

    Raises a :class:`~crmpilot.events.errors.PoisonMessage` subclass that names
    what is wrong; never returns a partially valid event.
    """
    from .registry import model_for  # local import: registry imports the models

    if raw is None:
        raise InvalidJSON("record has no value (tombstone)")
    if len(raw) > max_bytes:
        raise OversizePayload(f"record is {len(raw)} bytes, limit is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(f"record is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidJSON(f"record is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidJSON(f"record is JSON {type(obj).__name__}, expected an object")
    event_type = obj.get("type")
    version = obj.get("schemaversion")
    if not isinstance(event_type, str):
        raise InvalidPayload("envelope has no string 'type'")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidPayload("envelope has no integer 'schemaversion'")
    payload_model = model_for(event_type, version)
    missing = [name for name in _REQUIRED_ON_THE_WIRE if name not in obj]
    if missing:
        # Without its own id and time a record would get fresh ones on every delivery,
        # and a redelivery would become a second result.
        raise InvalidPayload(
            f"envelope has no {' or '.join(repr(m) for m in missing)}: every record must carry its own"
        )
    try:
        envelope = Envelope[payload_model].model_validate(obj)  # type: ignore[valid-type]  # the payload model is only known at run time
    except ValidationError as exc:
        raise InvalidPayload(f"{event_type} v{version} does not match its schema: {_summary(exc)}") from exc
    naive = [path for path, value in _datetimes(envelope, "") if value.utcoffset() is None]
    if naive:
        raise InvalidPayload(f"{event_type} v{version}: time without a UTC offset in {', '.join(naive[:5])}")
    limit = (now or datetime.now(UTC)) + max_future_skew
    if envelope.time > limit:
        raise FutureTimestamp(
            f"{event_type} v{version}: time {envelope.time.isoformat()} is more than {max_future_skew} ahead "
            "of this consumer's clock"
        )
    return envelope


def _datetimes(value: Any, path: str) -> Iterator[tuple[str, datetime]]:
    """Every datetime inside a validated model, with its dotted path."""
    if isinstance(value, datetime):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _datetimes(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _datetimes(item, f"{path}.{i}")


def _summary(exc: ValidationError, limit: int = 5) -> str:
    """The first ``limit`` errors, the deepest first: of a union's alternatives, the one that got furthest into the
    value names the field that is wrong (``outputs.factors.0.name``), not only the union (``outputs.factors``)."""
    errors = sorted(exc.errors(), key=lambda e: -len(e["loc"]))
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:limit]]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
