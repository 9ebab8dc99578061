"""What a handler receives besides the event (:class:`MessageContext`) and returns (:class:`Output`).

A handler is ``async def handle(envelope, ctx) -> Sequence[Output]``; a sink
returns ``()`` (or ``None``). Outputs are produced by the runtime, which waits
for the broker's acknowledgement before it counts the input record as done.
When an output has no ``traceparent`` header the runtime adds the input's, so a
trace follows the event through every service; and unless it has one, the
header ``crmpilot.source.event_id`` with the id of the input event it answers
(the same id as the result's ``provenance.source_event_id``), so a consumer
can find a result's source without decoding it.

Handlers run on the event loop, many at once: they must not block it (run
blocking or CPU-heavy work with ``asyncio.to_thread``). What a handler raises
decides the record's fate (see :mod:`crmpilot.streaming.runtime`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from crmpilot.events import Envelope, encode

__all__ = ["MessageContext", "Output", "Handler", "Header", "SOURCE_EVENT_ID", "TRACEPARENT", "TRACESTATE"]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
SOURCE_EVENT_ID = "crmpilot.source.event_id"

Header: TypeAlias = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class MessageContext:
    """Where the record being handled came from, and which attempt this is (1-based)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: tuple[Header, ...]
    timestamp: datetime | None
    group_id: str
    attempt: int = 1

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, None if absent."""
        for k, v in reversed(self.headers):
            if k == name:
                return v
        return None

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context of the record, if it carried one."""
        raw = self.header(TRACEPARENT)
        return raw.decode("ascii", "replace") if raw else None

    @property
    def tracestate(self) -> str | None:
        raw = self.header(TRACESTATE)
        return raw.decode("ascii", "replace") if raw else None


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce: topic, key, value bytes, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...] = ()

    @classmethod
    def event(cls, topic: str, envelope: Envelope[Any], *, headers: Sequence[Header] = ()) -> Output:
        """An envelope as a record, keyed by its subject (the entity it is about)."""
        return cls(topic, envelope.subject.encode("utf-8"), encode(envelope), (*headers, _CONTENT_TYPE))

    def with_trace(self, traceparent: bytes | None, tracestate: bytes | None) -> Output:
        """This output with the given trace context unless it already carries one."""
        if traceparent is None or any(k == TRACEPARENT for k, _ in self.headers):
            return self
        extra: tuple[Header, ...] = ((TRACEPARENT, traceparent),)
        if tracestate is not None:
            extra += ((TRACESTATE, tracestate),)
        return Output(self.topic, self.key, self.value, self.headers + extra)

    def with_source_event(self, event_id: str) -> Output:
        """This output with the ``crmpilot.source.event_id`` header unless it already carries one."""
        if any(k == SOURCE_EVENT_ID for k, _ in self.headers):
            return self
        return Output(self.topic, self.key, self.value, (*self.headers, (SOURCE_EVENT_ID, event_id.encode("utf-8"))))


_CONTENT_TYPE: Header = ("content-type", b"application/cloudevents+json; charset=utf-8")

Handler: TypeAlias = Callable[[Envelope[Any], MessageContext], Awaitable[Sequence[Output] | None]]
"""``async def handle(envelope, ctx) -> Sequence[Output] | None``."""
