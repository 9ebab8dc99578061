"""The consumer runtime every crmpilot service runs on: :class:`ConsumerService`.

One service = one consumer group. Per record the runtime decodes the envelope
(strict, :func:`crmpilot.events.decode`), calls the handler
``async def handle(envelope, ctx) -> Sequence[Output]``, produces its outputs
with an idempotent producer (``acks=all``), waits for the broker's
acknowledgements, and only then counts the record as done.

Threads and the event loop
    Handlers, the scheduler and the offset book live on the asyncio loop. The
    librdkafka consumer is driven from one dedicated thread (a single-worker
    executor): every consumer call (``consume``, ``pause``/``resume``,
    ``commit``, ``close``) runs there in turn, so the loop never blocks on
    Kafka. Rebalance callbacks fire inside ``consume`` on that thread; they hand
    their work to the loop (``run_coroutine_threadsafe``) and wait for it, which
    is what lets a revoke finish in-flight records before the partition moves.

Commits
    ``enable.auto.commit=false``; the runtime commits explicitly and
    synchronously, per partition, the *contiguous watermark* (lowest offset
    fetched and not done, see :mod:`crmpilot.streaming.offsets`): every
    ``commit_interval_s``, on revoke (inside the callback, before the partition
    is handed over) and on shutdown. We chose explicit commits over auto-commit
    + ``store_offsets`` because the revoke and shutdown commits must be
    synchronous and their outcome known, and because it keeps one code path for
    "what is committed"; a record is never committed past an unfinished one.
    Delivery is therefore at-least-once: after a crash, records after the last
    watermark are handled again (sinks are idempotent on the result id).

Ordering and concurrency
    ``ordering="key"``: records with the same key run in order, different keys
    concurrently (records without a key are unordered); ``"partition"``: one
    record at a time per partition; ``"unordered"``: all concurrent. At most
    ``max_in_flight`` handler calls run at once; when ``buffer_limit`` records
    (or ``max_buffered_bytes``) are fetched and not done, all partitions are
    paused, and resumed once half of them are done. Pausing is costly in
    librdkafka (it drops the prefetched records and resumes fetching up to ~1 s
    later), hence the generous default buffer.

Errors (by trait, see :mod:`crmpilot.errors`)
    - :class:`~crmpilot.errors.Permanent` (a :class:`~crmpilot.events.PoisonMessage`
      from decoding or the handler, a request the model's endpoint refuses as
      such, e.g. a prompt too long for it): dead-lettered at once.
    - :class:`~crmpilot.errors.Retryable`: retried up to ``max_attempts`` with
      exponential backoff + jitter (``retry_after`` honoured); only that key
      waits, and it holds no concurrency slot while it does. Then dead-lettered.
    - :class:`~crmpilot.errors.Fatal`: the service stops: no new work, in-flight
      records drain (up to ``shutdown_timeout_s``), the safe watermark is
      committed (never past the failed record), and :meth:`ConsumerService.run`
      raises the error (:meth:`ConsumerService.serve` returns exit code 1).
    - Any other exception: a bug or an untranslated error; treated like
      Retryable (logged with its class on every attempt), then dead-lettered
      with its class name in ``crmpilot.error.class`` and code
      ``unhandled_exception``.
    A record counts as done only once its dead-letter copy is acknowledged; if
    even that fails, the service stops (:class:`DeadLetterFailed`).

Start
    The service checks that every topic it reads and its dead-letter twin exist
    (:class:`MissingTopics`, fatal) before it joins the group: a record must
    never wait for a dead-letter topic that is not there.

Health and metrics
    :meth:`ConsumerService.status` says whether the service is alive and
    ready. Alive (:mod:`crmpilot.streaming.liveness`): the consumer thread
    polled within ``min(max.poll.interval.ms, 60 s) + revoke_timeout_s``, and
    the member has not been out of its consumer group for longer than
    ``liveness_timeout_s`` (default ``2 × session.timeout.ms``), judged from
    librdkafka's rebalance callbacks, its error callback
    (``_ALL_BROKERS_DOWN``) and the group handler's state in its statistics
    (``statistics.interval.ms``, 1 s). Ready: alive, partitions assigned,
    polled within 5 s, not stopping. The
    lifecycle server (:mod:`crmpilot.streaming.lifecycle`, started by
    :func:`crmpilot.service.run_service`) answers ``/healthz`` and ``/readyz``
    from it. Counters and histograms go to the process registry as records are
    handled; in-flight, buffered, paused, assignment and lag per partition are
    read when scraped (:mod:`crmpilot.streaming.metrics`).

Shutdown
    :meth:`ConsumerService.stop` (SIGTERM/SIGINT under :meth:`serve`): stop
    fetching; records not yet started (queued, waiting for a slot, or waiting
    out a retry backoff) are not started; running handler calls finish up to
    ``shutdown_timeout_s`` (a second signal cuts the wait short) and the rest
    are cancelled; the watermark is committed, the consumer closed (leaving the
    group) and the producer flushed. Unstarted records are redelivered on the
    next start. A revoked partition is handed over the same way, within
    ``revoke_timeout_s``.

    A static member (``group_instance_id``) does not leave its group on
    ``close()`` (KIP-345): its partitions would sit idle for the whole
    ``session.timeout.ms``, waiting for a restart that a scale-down or a stop
    for good never brings. So on a graceful stop (a stop request, not a fatal
    error) it first unsubscribes, which librdkafka does send a LeaveGroup for:
    its partitions are revoked (the revoke commit runs), the broker drops the
    instance id and the others take the partitions at their next heartbeat
    (3 s) instead of after the session; the restarted instance, if any, joins
    again with the same id (one cooperative rebalance). The wait is bounded
    (``_LEAVE_WAIT_S``); a crash (SIGKILL, OOM) or a fatal error leaves no
    such notice, so the partitions wait for the restart as before.
    ``leave_group_on_stop=False`` keeps KIP-345's behaviour (for instances
    that always come back within the session). A consumer replaced by a
    rebuild never leaves: its successor uses the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from crmpilot.errors import Fatal, Permanent, Retryable
from crmpilot.events import Envelope, decode
from crmpilot.settings import KafkaSettings

from .config import RuntimeSettings
from .context import TRACEPARENT, TRACESTATE, Handler, Header, MessageContext, Output
from .dlq import dlq_headers, error_class
from .errors import ConsumerFatal, DeadLetterFailed, DeliveryFailed, MissingTopics, ProducerFatal
from .lifecycle import ServiceStatus
from .liveness import MembershipWatch
from .metrics import ConsumerMetrics, FailureKind, Gauges, live_gauges
from .offsets import TP, OffsetBook, OffsetTracker
from .producer import AsyncProducer
from .retry import backoff_delay
from .scheduler import KeyScheduler

__all__ = ["ConsumerService", "ServiceStats"]

logger = logging.getLogger("crmpilot.streaming")

R = TypeVar("R")

_MAX_BATCH = 500
_READY_POLL_GAP_S = 5.0  # not ready when the consumer thread has not polled for this long (e.g. a rebalance)
_CLOSE_WAIT_S = 10.0  # a rebuild waits this long for the replaced consumer to close
_LEAVE_WAIT_S = 5.0  # a static member's graceful stop waits this long for its revoke and LeaveGroup
_DLQ_PRODUCE_ATTEMPTS = 3
# commit errors that only mean "a rebalance is under way": the next commit retries
_REBALANCING = frozenset(
    {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID}
)


@dataclass
class ServiceStats:
    """Counters of one service run (read them; the runtime writes them)."""

    consumed: int = 0
    processed: int = 0
    produced: int = 0
    failed: int = 0
    dead_lettered: int = 0
    retries: int = 0
    duplicates_skipped: int = 0
    commits: int = 0
    pauses: int = 0
    consumer_rebuilds: int = 0


@dataclass(slots=True, eq=False)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    timestamp: datetime | None
    tracker: OffsetTracker = field(repr=False)
    fetched_at: float = field(repr=False)

    def context(self, group_id: str, attempt: int) -> MessageContext:
        return MessageContext(
            self.topic, self.partition, self.offset, self.key, self.headers, self.timestamp, group_id, attempt
        )


class ConsumerService:
    """Consume ``settings.topics`` as ``settings.group_id`` and run ``handler`` on every record.

    ``await service.run()`` until :meth:`stop`; or ``sys.exit(asyncio.run(service.serve()))``
    in a service's ``__main__`` for signal handling and an exit code. One run per instance.
    """

    def __init__(self, handler: Handler, settings: RuntimeSettings, kafka: KafkaSettings | None = None) -> None:
        self._handler = handler
        self._settings = settings
        self._kafka = kafka or KafkaSettings()
        self._book = OffsetBook()
        self._scheduler: KeyScheduler[_Record] = KeyScheduler(self._process, self._crashed)
        self.stats = ServiceStats()
        self._metrics = ConsumerMetrics(settings.group_id)
        self._running = 0  # handler calls holding a slot
        self._last_poll: float | None = None  # time.monotonic() of the consumer thread's last poll
        self._membership = MembershipWatch(
            member_timeout_s=settings.member_timeout_s, poll_stall_s=settings.poll_stall_s
        )
        self._highs: dict[TP, int] = {}  # high watermarks of the last fetches (consumer thread writes)
        self._positions: dict[TP, int] = {}  # fetch positions (consumer thread writes)
        self._started = False
        self._stopping = False
        self._fatal: BaseException | None = None
        self._paused = False
        self._handing_over: set[TP] = set()  # partitions being revoked: start nothing new there
        # created in run(), bound to the running loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._hurry: asyncio.Event | None = None
        self._stop_requested: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._consumer: Consumer | None = None
        self._generation = 0  # of self._consumer: callbacks of a consumer replaced since are ignored
        self._rebuilt_at: float | None = None
        self._closing: threading.Thread | None = None  # the close of a consumer replaced by a rebuild
        self._producer: AsyncProducer | None = None

    @property
    def settings(self) -> RuntimeSettings:
        return self._settings

    @property
    def assignment(self) -> list[TP]:
        """Partitions currently assigned to this member."""
        return self._book.partitions

    @property
    def in_flight(self) -> int:
        """Records fetched and not yet done."""
        return self._scheduler.pending

    def status(self) -> ServiceStatus:
        """Alive unless the consumer thread is stuck or the member has been out of its group too long
        (:mod:`crmpilot.streaming.liveness`); ready while alive, partitions are assigned and polled."""
        if self._stopping:
            return ServiceStatus(True, False, "stopping" if self._last_poll is not None else "stopped")
        liveness = self._membership.check()
        if not liveness.alive:
            return ServiceStatus(False, False, liveness.reason)
        if self._last_poll is None:
            return ServiceStatus(True, False, "starting")
        quiet = time.monotonic() - self._last_poll
        if quiet > _READY_POLL_GAP_S:
            return ServiceStatus(True, False, f"no poll for {quiet:.0f}s (rebalancing?)")
        partitions = len(self._book.partitions)
        if not partitions:
            return ServiceStatus(
                True, False, "no partitions assigned" + ("" if liveness.member else f" ({liveness.reason})")
            )
        return ServiceStatus(
            True, True, f"consuming {partitions} partition(s)" + (", paused (backpressure)" if self._paused else "")
        )

    def gauges(self) -> Gauges:
        """The state :mod:`crmpilot.streaming.metrics` exposes at scrape time."""
        lag: dict[TP, int] = {}
        highs, positions = self._highs, self._positions
        for tp in self._book.partitions:
            tracker, high = self._book.tracker(tp), highs.get(tp)
            mark = tracker.watermark() if tracker is not None else None
            base = mark if mark is not None else positions.get(tp)
            if high is not None and high >= 0 and base is not None:
                lag[tp] = max(0, high - base)
        return Gauges(
            self._settings.group_id,
            self._running,
            self._scheduler.pending,
            self._paused,
            len(self._book.partitions),
            lag,
            self._membership.check() if self._started and not self._stopping else None,
        )

    def stop(self) -> None:
        """Ask the service to shut down gracefully; a second call stops waiting for in-flight work."""
        if self._stopping and self._hurry is not None and not self._hurry.is_set():
            logger.warning("second stop request: abandoning in-flight records (they will be redelivered)")
            self._hurry.set()
        self._stopping = True
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def serve(self) -> int:
        """Run with SIGTERM/SIGINT handlers installed; return the process exit code (0 ok, 1 fatal)."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            await self.run()
        except Fatal as exc:
            logger.critical(
                "service %s stopped on a fatal error: %s: %s", self._settings.group_id, error_class(exc), exc
            )
            return 1
        except Exception:
            logger.critical("service %s crashed", self._settings.group_id, exc_info=True)
            return 1
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        return 0

    async def run(self) -> None:
        """Consume until :meth:`stop`; raise the error that stopped the service, if any."""
        if self._started:
            raise RuntimeError("a ConsumerService runs once; create a new one")
        self._started = True
        s = self._settings
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(s.max_in_flight)
        self._hurry = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"crmpilot-consumer-{s.group_id}")
        self._producer = AsyncProducer(s.producer_config(self._kafka))
        live_gauges().add(self)
        try:
            self._consumer = await self._call(self._open_consumer)
            self._membership.subscribed()
            logger.info("service %s consuming %s", s.group_id, ", ".join(s.topics))
            await self._poll_loop()
        finally:
            try:
                await self._shutdown()
            finally:
                live_gauges().discard(self)
        if self._fatal is not None:
            raise self._fatal

    # --- the poll loop (event loop side) ---------------------------------------------

    async def _poll_loop(self) -> None:
        s = self._settings
        loop = asyncio.get_running_loop()
        next_commit = loop.time() + s.commit_interval_s
        limit, byte_limit = s.buffer_limit, s.max_buffered_bytes
        while not self._stopping:
            pending, pending_bytes = self._scheduler.pending, self._scheduler.pending_size
            flow: bool | None = None
            if not self._paused and (pending >= limit or pending_bytes >= byte_limit):
                flow, self._paused = False, True
                self.stats.pauses += 1
                self._metrics.paused()
            elif self._paused and pending <= limit // 2 and pending_bytes <= byte_limit // 2:
                flow, self._paused = True, False
            commit: dict[TP, int] | None = None  # None: not time to commit (nor to look at the watermarks)
            if loop.time() >= next_commit:
                commit = self._book.to_commit()
                next_commit = loop.time() + s.commit_interval_s
            room = min(_MAX_BATCH, max(1, limit - pending))
            messages, committed = await self._call(self._poll_step, flow, commit, room)
            self._book.committed(committed)
            fetched_at = time.monotonic()
            for message in messages:
                self._dispatch(message, fetched_at)
            if self._rebuild_due():
                await self._rebuild_consumer()

    def _open_consumer(self, *, check_topics: bool = True) -> Consumer:
        """A new consumer, subscribed (consumer thread); only its callbacks count while it is the
        current generation. ``check_topics`` asks the cluster first (at start; not on a rebuild,
        which may run while the brokers are down)."""
        generation = self._generation

        def on_error(err: KafkaError) -> None:
            if generation == self._generation:
                self._on_error(err)

        def on_stats(stats: str) -> None:
            if generation == self._generation:
                self._membership.statistics(stats)

        consumer = Consumer({**self._settings.consumer_config(self._kafka), "error_cb": on_error, "stats_cb": on_stats})
        try:
            if check_topics:
                self._check_topics(consumer)
            consumer.subscribe(
                list(self._settings.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
        except BaseException:
            consumer.close()
            raise
        return consumer

    def _rebuild_due(self) -> bool:
        """Out of the group past the liveness limit, no rebuild within that limit, no old consumer still closing."""
        s = self._settings
        if not s.rebuild_consumer or self._stopping:
            return False
        if self._closing is not None and self._closing.is_alive():
            return False  # one abandoned consumer at a time, however long the outage
        liveness = self._membership.check()
        if liveness.member or liveness.without_membership_s <= s.member_timeout_s:
            return False
        return self._rebuilt_at is None or time.monotonic() - self._rebuilt_at >= s.member_timeout_s

    async def _rebuild_consumer(self) -> None:
        """Replace a consumer stuck out of its group: drop its partitions (their records are redelivered),
        close it (waiting at most ``_CLOSE_WAIT_S``; a close that hangs is left to finish on its own thread,
        and no other rebuild starts until it has), then subscribe a new consumer. Closing first means a
        static member (``group.instance.id``) never has two consumers in the group at once.

        The membership clock is not reset: ``/healthz`` stays unhealthy until the new consumer joins.
        """
        self._rebuilt_at = time.monotonic()
        self.stats.consumer_rebuilds += 1
        self._metrics.rebuilt()
        liveness = self._membership.check()
        logger.warning(
            "consumer of %s out of its group for %.0fs (%s): closing it and subscribing a new one (rebuild %d)",
            self._settings.group_id,
            liveness.without_membership_s,
            liveness.reason,
            self.stats.consumer_rebuilds,
        )
        held = list(self._book.partitions)
        if held:
            await self._losing(held)
        self._membership.lost(len(held))
        self._paused = False
        old, self._consumer = self._consumer, None  # its rebalance callbacks are ignored from here
        self._generation += 1  # and so are its error and statistics callbacks
        self._membership.polled()  # the loop is busy rebuilding, not stuck: the close wait is bounded
        if old is not None:
            self._closing = threading.Thread(
                target=_close_quietly, args=(old,), name="crmpilot-consumer-close", daemon=True
            )
            self._closing.start()
            await asyncio.to_thread(self._closing.join, _CLOSE_WAIT_S)
            if self._closing.is_alive():
                logger.warning("the replaced consumer did not close within %.0fs; it is left to finish", _CLOSE_WAIT_S)
        self._consumer = await self._call(self._open_consumer, check_topics=False)
        self._membership.polled()

    def _dispatch(self, message: Message, fetched_at: float) -> None:
        err = message.error()
        if err is not None:
            self._consumer_error(err)
            return
        if self._stopping:
            return  # not registered: stays uncommitted and is fetched again
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            logger.warning("record without topic/partition/offset ignored")
            return
        tp = (topic, partition)
        tracker = self._book.tracker(tp)
        if tracker is None:
            logger.debug("record %s[%d]@%d of a partition no longer assigned: skipped", topic, partition, offset)
            return
        if not tracker.begin(offset):
            self.stats.duplicates_skipped += 1
            return
        ts_type, ts_ms = message.timestamp()
        record = _Record(
            topic,
            partition,
            offset,
            message.key(),
            message.value(),
            tuple(cast(list[Header], message.headers() or [])),  # consumed header values are bytes
            None if ts_type == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(ts_ms / 1000, UTC),
            tracker,
            fetched_at,
        )
        self.stats.consumed += 1
        self._metrics.consumed(topic)
        ordering = self._settings.ordering
        lane = record.key if ordering == "key" else ("partition" if ordering == "partition" else None)
        self._scheduler.submit(tp, lane, record, len(record.value or b"") + len(record.key or b""))

    def _consumer_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._MAX_POLL_EXCEEDED:
            self._membership.left("max.poll.interval.ms exceeded: left the group")
        if err.fatal():
            self._fail(ConsumerFatal(f"consumer error {err.name()}: {err.str()}"))
        elif err.code() != KafkaError._PARTITION_EOF:
            logger.warning("consumer: %s: %s", err.name(), err.str())

    # --- per record ------------------------------------------------------------------

    async def _process(self, record: _Record) -> None:
        s = self._settings
        trace = (_last(record.headers, TRACEPARENT), _last(record.headers, TRACESTATE))
        assert self._slots is not None and self._producer is not None and self._stop_requested is not None
        envelope: Envelope[Any] | None = None
        produced: list[Output] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._slots:
                    if self._abandoned(record):
                        return
                    self._running += 1
                    try:
                        if envelope is None:  # decoded inside the slot: CPU work stays bounded by max_in_flight
                            envelope = decode(record.value, max_bytes=s.max_record_bytes)
                        outputs = await self._handler(envelope, record.context(s.group_id, attempt))
                        produced = [o.with_trace(*trace).with_source_event(envelope.id) for o in outputs or ()]
                        await self._producer.produce_outputs(produced)
                    finally:
                        self._running -= 1
            except Fatal as exc:
                self._count_failure(record, "fatal")
                self._fail(exc, record)
                return
            except Permanent as exc:  # poison from decoding (never handled: 0 attempts), or final for this record
                self._count_failure(record, "poison")
                await self._dead_letter(record, exc, attempts=0 if envelope is None else attempt)
                return
            except Exception as exc:  # noqa: BLE001 - Retryable, or unknown: retried then dead-lettered
                self._count_failure(record, "retryable" if isinstance(exc, Retryable) else "unhandled")
                if attempt >= s.max_attempts:
                    await self._dead_letter(record, exc, attempts=attempt)
                    return
                delay = backoff_delay(
                    attempt,
                    initial=s.backoff_initial_s,
                    maximum=s.backoff_max_s,
                    multiplier=s.backoff_multiplier,
                    retry_after=getattr(exc, "retry_after", None),
                )
                self.stats.retries += 1
                self._metrics.retried(record.topic)
                logger.warning(
                    "%s[%d]@%d attempt %d/%d failed (%s: %s); retrying in %.2fs",
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    s.max_attempts,
                    error_class(exc),
                    exc,
                    delay,
                )
                # wait out the backoff, unless the service stops meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), delay)
                continue
            record.tracker.finish(record.offset)
            self.stats.processed += 1
            self.stats.produced += len(produced)
            for output in produced:
                self._metrics.produced(output.topic)
            self._metrics.processed(record.topic, time.monotonic() - record.fetched_at)
            return

    def _count_failure(self, record: _Record, kind: FailureKind) -> None:
        self.stats.failed += 1
        self._metrics.failed(record.topic, kind)

    def _abandoned(self, record: _Record) -> bool:
        """True when the record must not start (again): the service stops or its partition is being revoked.

        It stays unfinished, so the watermark stays below it and it is redelivered.
        """
        return self._stopping or (record.topic, record.partition) in self._handing_over

    async def _dead_letter(self, record: _Record, exc: BaseException, *, attempts: int) -> None:
        s = self._settings
        assert self._producer is not None
        topic = s.dlq_topic(record.topic)
        headers = dlq_headers(
            record.headers,
            exc,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            attempts=attempts,
            group_id=s.group_id,
            failed_at=datetime.now(UTC),
        )
        for produce_attempt in range(1, _DLQ_PRODUCE_ATTEMPTS + 1):
            try:
                await self._producer.produce(topic, record.value, record.key, headers)
                break
            except ProducerFatal as fatal:
                self._fail(fatal, record)
                return
            except DeliveryFailed as failed:
                if produce_attempt == _DLQ_PRODUCE_ATTEMPTS:
                    lost = DeadLetterFailed(
                        f"cannot dead-letter {record.topic}[{record.partition}]@{record.offset} to {topic}: {failed}"
                    )
                    lost.__cause__ = failed
                    self._fail(lost, record)
                    return
                await asyncio.sleep(
                    backoff_delay(
                        produce_attempt,
                        initial=s.backoff_initial_s,
                        maximum=s.backoff_max_s,
                        multiplier=s.backoff_multiplier,
                    )
                )
        record.tracker.finish(record.offset)
        self.stats.dead_lettered += 1
        self._metrics.dead_lettered(record.topic, time.monotonic() - record.fetched_at)
        logger.warning(
            "%s[%d]@%d dead-lettered to %s after %d attempt(s): %s: %s",
            record.topic,
            record.partition,
            record.offset,
            topic,
            attempts,
            error_class(exc),
            exc,
        )

    def _fail(self, exc: BaseException, record: _Record | None = None) -> None:
        where = f" at {record.topic}[{record.partition}]@{record.offset}" if record else ""
        if self._fatal is None:
            self._fatal = exc
            logger.critical("fatal error%s, stopping: %s: %s", where, error_class(exc), exc, exc_info=exc)
        self.stop()

    def _crashed(self, record: _Record, exc: Exception) -> None:
        """A bug escaped the record worker: stop rather than stall the watermark silently."""
        self._fail(exc, record)

    # --- consumer thread side -------------------------------------------------------

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run a consumer call on the consumer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _on_loop(self, coro: Coroutine[Any, Any, R]) -> R:
        """From the consumer thread: run ``coro`` on the event loop and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _check_topics(self, consumer: Consumer) -> None:
        """Fail fast when a source topic or its dead-letter twin is missing."""
        s = self._settings
        try:
            existing = consumer.list_topics(timeout=s.startup_timeout_s).topics
        except KafkaException as exc:
            raise ConsumerFatal(f"cannot reach Kafka at {self._kafka.bootstrap}: {exc.args[0].str()}") from exc
        needed = [name for t in s.topics for name in (t, s.dlq_topic(t))]
        missing = [t for t in needed if t not in existing or existing[t].error is not None]
        if missing:
            raise MissingTopics(missing)

    def _poll_step(
        self, flow: bool | None, commit: dict[TP, int] | None, room: int
    ) -> tuple[list[Message], dict[TP, int]]:
        consumer = self._consumer
        assert consumer is not None
        if flow is False:
            consumer.pause(consumer.assignment())
            logger.debug("backpressure: %d records in flight, partitions paused", self._scheduler.pending)
        elif flow is True:
            consumer.resume(consumer.assignment())
            logger.debug("backpressure released: partitions resumed")
        committed: dict[TP, int] = {}
        if commit is not None:
            committed = self._commit(consumer, commit, "periodic") if commit else {}
            self._watch(consumer)
        timeout = self._settings.poll_timeout_s
        messages = consumer.consume(room, 0)
        if not messages:
            messages = consumer.consume(1, timeout)
            if messages and room > 1:
                messages += consumer.consume(room - 1, 0)
        self._last_poll = time.monotonic()
        self._membership.polled()
        return messages, committed

    def _watch(self, consumer: Consumer) -> None:
        """Note each assigned partition's high watermark (of the last fetch, no broker call) and position."""
        assigned = consumer.assignment()
        highs: dict[TP, int] = {}
        for tp in assigned:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            highs[(tp.topic, tp.partition)] = high
        self._highs = highs
        self._positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(assigned) if tp.offset >= 0}
        self._membership.member_id(consumer.memberid())

    def _commit(self, consumer: Consumer, offsets: dict[TP, int], reason: str) -> dict[TP, int]:
        """Commit synchronously; return the offsets the broker accepted."""
        started = time.monotonic()
        try:
            result = consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            self._metrics.committed(reason, time.monotonic() - started, ok=False)
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise ConsumerFatal(f"{reason} commit failed: {err.name()}: {err.str()}") from exc
            level = logging.INFO if err.code() in _REBALANCING else logging.WARNING
            logger.log(
                level,
                "%s commit failed: %s: %s (records after the last commit may be redelivered)",
                reason,
                err.name(),
                err.str(),
            )
            return {}
        accepted: dict[TP, int] = {}
        for tp in result or ():
            if tp.error is not None:
                logger.warning("%s commit of %s[%d] failed: %s", reason, tp.topic, tp.partition, tp.error)
            else:
                accepted[(tp.topic, tp.partition)] = tp.offset
        self._metrics.committed(reason, time.monotonic() - started, ok=len(accepted) == len(offsets))
        self.stats.commits += 1
        logger.debug("%s commit: %s", reason, accepted)
        return accepted

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return  # a consumer replaced by a rebuild, closing
        self._membership.assigned(len(partitions))
        self._metrics.rebalanced("assign")
        tps = [(p.topic, p.partition) for p in partitions]
        paused = self._on_loop(self._assigned(tps))
        consumer.incremental_assign(partitions)
        if paused and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return  # a consumer replaced by a rebuild, closing
        self._membership.revoked(len(partitions))
        self._metrics.rebalanced("revoke")
        final = self._on_loop(self._revoking([(p.topic, p.partition) for p in partitions]))
        if final:
            self._commit(consumer, final, "revoke")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return  # a consumer replaced by a rebuild, closing
        self._membership.lost(len(partitions))
        self._metrics.rebalanced("lost")
        self._on_loop(self._losing([(p.topic, p.partition) for p in partitions]))

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's global error callback (runs on whichever thread polls)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._membership.left(f"all brokers down ({err.str()})")
        if err.fatal():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._fail, ConsumerFatal(f"{err.name()}: {err.str()}"))
        else:
            logger.warning("kafka: %s: %s", err.name(), err.str())

    # --- rebalance work, on the loop ----------------------------------------------------

    async def _assigned(self, tps: list[TP]) -> bool:
        self._book.assign(tps)
        if tps:
            logger.info("assigned %s", _fmt(tps))
        return self._paused

    async def _revoking(self, tps: list[TP]) -> dict[TP, int]:
        groups = set(tps)
        self._handing_over |= groups
        try:
            dropped = self._scheduler.drop_queued(groups)
            finished = await self._scheduler.wait(groups, timeout=self._settings.revoke_timeout_s)
            if not finished:
                cancelled = await self._scheduler.cancel(groups)
                logger.warning(
                    "revoke: %d lane(s) still running after %.1fs cancelled", cancelled, self._settings.revoke_timeout_s
                )
            final = self._book.revoke(tps)
        finally:
            self._handing_over -= groups
        if tps:
            logger.info("revoked %s (%d queued record(s) left for the next owner)", _fmt(tps), dropped)
        return final

    async def _losing(self, tps: list[TP]) -> None:
        groups = set(tps)
        self._scheduler.drop_queued(groups)
        await self._scheduler.cancel(groups)
        self._book.lose(tps)
        logger.warning("lost %s without commit: their in-flight records will be redelivered", _fmt(tps))

    # --- shutdown ---------------------------------------------------------------------

    async def _shutdown(self) -> None:
        s = self._settings
        self._stopping = True
        dropped = self._scheduler.drop_queued()
        if self._scheduler.pending:
            logger.info("draining %d in-flight record(s) (up to %.1fs)", self._scheduler.pending, s.shutdown_timeout_s)
        drained = await self._wait_or_hurry(s.shutdown_timeout_s)
        if not drained:
            cancelled = await self._scheduler.cancel()
            logger.warning("shutdown: %d lane(s) cancelled; their records will be redelivered", cancelled)
        try:
            if self._consumer is not None:
                final = self._book.to_commit()
                if final:
                    self._book.committed(await self._call(self._commit, self._consumer, final, "shutdown"))
                if s.group_instance_id and s.leave_group_on_stop and self._fatal is None:
                    await self._call(self._leave_group, self._consumer)
                await self._call(self._consumer.close)
        finally:
            if self._producer is not None:
                undelivered = await self._producer.aclose(s.shutdown_timeout_s)
                if undelivered:
                    logger.warning("%d produced record(s) not acknowledged at shutdown", undelivered)
            if self._executor is not None:
                self._executor.shutdown(wait=False)
        logger.info(
            "service %s stopped: %d processed, %d dead-lettered, %d queued left for redelivery",
            s.group_id,
            self.stats.processed,
            self.stats.dead_lettered,
            dropped,
        )

    def _leave_group(self, consumer: Consumer, wait_s: float = _LEAVE_WAIT_S) -> bool:
        """A static member's graceful exit (consumer thread): unsubscribe, serve the revoke, let librdkafka
        send its LeaveGroup; True once the member has left (no assignment, no member id) within ``wait_s``.

        Records fetched meanwhile are not dispatched (the service is stopping): they stay uncommitted
        and go to the partitions' next owner.
        """
        instance = self._settings.group_instance_id
        started = time.monotonic()
        try:
            consumer.unsubscribe()
            while consumer.assignment() or consumer.memberid():
                if time.monotonic() - started >= wait_s:
                    logger.warning(
                        "static member %s did not leave group %s within %.0fs: its partitions move after "
                        "session.timeout.ms",
                        instance,
                        self._settings.group_id,
                        wait_s,
                    )
                    return False
                consumer.consume(_MAX_BATCH, 0.05)
        except (KafkaException, RuntimeError) as exc:
            logger.warning("static member %s could not leave group %s: %s", instance, self._settings.group_id, exc)
            return False
        logger.info(
            "static member %s left group %s in %.2fs (its partitions go to the other members now)",
            instance,
            self._settings.group_id,
            time.monotonic() - started,
        )
        return True

    async def _wait_or_hurry(self, timeout: float) -> bool:
        assert self._hurry is not None
        drain = asyncio.ensure_future(self._scheduler.wait(None, timeout))
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait({drain, hurry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        if not drain.done():
            drain.cancel()
            return False
        return drain.result()


def _close_quietly(consumer: Consumer) -> None:
    try:
        consumer.close()
    except Exception as exc:  # noqa: BLE001 - the consumer is being discarded; its close is best effort
        logger.info("closing a replaced consumer failed: %s", exc)


def _last(headers: tuple[Header, ...], name: str) -> bytes | None:
    for k, v in reversed(headers):
        if k == name:
            return v
    return None


def _fmt(tps: list[TP]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in tps)
