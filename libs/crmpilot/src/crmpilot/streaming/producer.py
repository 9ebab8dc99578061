"""Producing with awaitable broker acknowledgements, and a helper to send envelopes.

:class:`AsyncProducer` wraps confluent-kafka's plain ``Producer`` (idempotent,
``acks=all``): ``await produce(...)`` returns once the broker acknowledged the
record, or raises :class:`~crmpilot.streaming.errors.DeliveryFailed` /
:class:`~crmpilot.streaming.errors.ProducerFatal`. A daemon thread serves the
delivery callbacks (``poll``) and hands each result to the event loop. We do not
use ``confluent_kafka.aio.AIOProducer``: its ``produce`` rejects headers, and
headers carry the dead-letter context and ``traceparent``.

:class:`EventProducer` (async) and :func:`produce_events` (blocking) send
:class:`~crmpilot.events.Envelope` objects keyed by their subject, with an
optional W3C ``traceparent``; services outside the runtime, the demo and tests use them.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from crmpilot.events import Envelope
from crmpilot.settings import KafkaSettings

from .context import TRACEPARENT, TRACESTATE, Header, Output
from .errors import DeliveryFailed, ProducerFatal, delivery_error

__all__ = ["Delivery", "AsyncProducer", "EventProducer", "produce_events", "event_producer_config"]

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored an acknowledged record."""

    topic: str
    partition: int
    offset: int


def event_producer_config(kafka: KafkaSettings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """Idempotent producer keys (``acks=all``) for ``client_id``."""
    return {
        **kafka.librdkafka(),
        "client.id": f"{kafka.client_id_prefix}-{client_id}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        **overrides,
    }


class AsyncProducer:
    """A confluent-kafka ``Producer`` whose deliveries can be awaited."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = Producer(dict(config))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="crmpilot-producer-poll", daemon=True)
        self._poller.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)

    async def produce(
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: Sequence[Header] | None = None
    ) -> Delivery:
        """Produce one record; return once the broker acknowledged it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            outcome: Delivery | BaseException = delivery_error(err, topic) if err is not None else _delivery(msg)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting for this record any more
                return

        while True:
            try:
                self._producer.produce(topic, value, key, headers=list(headers or ()), on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let the poll thread drain acknowledgements
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                raise delivery_error(exc.args[0], topic) from exc
        return await future

    async def produce_outputs(self, outputs: Iterable[Output]) -> list[Delivery]:
        """Produce several records concurrently; return when all are acknowledged."""
        return list(await asyncio.gather(*(self.produce(o.topic, o.value, o.key, o.headers) for o in outputs)))

    async def aclose(self, timeout: float = 30.0) -> int:
        """Flush, stop the poll thread; return how many records were not delivered."""
        self._closing.set()
        await asyncio.to_thread(self._poller.join)
        return await asyncio.to_thread(self._producer.flush, timeout)


def _delivery(msg: Message) -> Delivery:
    """The coordinates of an acknowledged record (-1 where the broker did not say)."""
    partition, offset = msg.partition(), msg.offset()
    return Delivery(msg.topic() or "", -1 if partition is None else partition, -1 if offset is None else offset)


def _settle(future: asyncio.Future[Delivery], outcome: Delivery | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _trace_headers(traceparent: str | None, tracestate: str | None) -> list[Header]:
    if traceparent is None:
        return []
    if not _TRACEPARENT.match(traceparent):
        raise ValueError(f"not a W3C traceparent: {traceparent!r}")
    headers: list[Header] = [(TRACEPARENT, traceparent.encode("ascii"))]
    if tracestate:
        headers.append((TRACESTATE, tracestate.encode("ascii")))
    return headers


class EventProducer:
    """Send envelopes keyed by subject, with W3C trace context passed through.

    Use as ``async with EventProducer(kafka, client_id="demo") as events: await events.send(...)``.
    """

    def __init__(self, kafka: KafkaSettings | None = None, *, client_id: str = "events", **overrides: Any) -> None:
        self._producer = AsyncProducer(event_producer_config(kafka or KafkaSettings(), client_id, **overrides))

    async def send(
        self,
        topic: str,
        envelope: Envelope[Any],
        *,
        traceparent: str | None = None,
        tracestate: str | None = None,
        headers: Sequence[Header] = (),
    ) -> Delivery:
        out = Output.event(topic, envelope, headers=(*headers, *_trace_headers(traceparent, tracestate)))
        return await self._producer.produce(out.topic, out.value, out.key, out.headers)

    async def send_many(
        self, topic: str, envelopes: Iterable[Envelope[Any]], *, traceparent: str | None = None
    ) -> list[Delivery]:
        trace = tuple(_trace_headers(traceparent, None))
        return await self._producer.produce_outputs(Output.event(topic, e, headers=trace) for e in envelopes)

    async def aclose(self, timeout: float = 30.0) -> int:
        return await self._producer.aclose(timeout)

    async def __aenter__(self) -> EventProducer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def produce_events(
    topic: str,
    envelopes: Iterable[Envelope[Any]],
    *,
    kafka: KafkaSettings | None = None,
    traceparent: str | None = None,
    client_id: str = "events",
    timeout: float = 30.0,
) -> list[Delivery]:
    """Blocking: send envelopes keyed by subject and wait for every acknowledgement.

    Raises :class:`DeliveryFailed` (or :class:`ProducerFatal`) if any record was not delivered.
    """
    trace = tuple(_trace_headers(traceparent, None))
    producer = Producer(event_producer_config(kafka or KafkaSettings(), client_id))
    results: list[Delivery] = []
    failures: list[DeliveryFailed | ProducerFatal] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(delivery_error(err, topic))
        else:
            results.append(_delivery(msg))

    sent = 0
    for envelope in envelopes:
        out = Output.event(topic, envelope, headers=trace)
        while True:
            try:
                producer.produce(out.topic, out.value, out.key, headers=list(out.headers), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as exc:
                raise delivery_error(exc.args[0], topic) from exc
        sent += 1
    left = producer.flush(timeout)
    if failures:
        raise failures[0]
    if left:
        raise DeliveryFailed(
            f"{left} of {sent} record(s) to {topic} not acknowledged within {timeout:g}s", code="timeout"
        )
    return results
