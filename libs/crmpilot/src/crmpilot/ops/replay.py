"""``crmpilot dlq replay``: send dead letters back to their source topic, once, never in a loop.

Each selected record of ``<topic>.dlq`` goes back to the topic and partition in
its ``crmpilot.source.topic`` / ``crmpilot.source.partition`` headers, with its
original key, value and headers; the ``crmpilot.error.*`` / ``crmpilot.source.*``
context of the failure is dropped and ``crmpilot.replay.count`` is incremented.
If it fails again, the runtime dead-letters it with that count (it keeps
original headers), and once the count reaches ``max_replays`` the record is
*refused*: reported, never sent again. Replayed records are remembered in the
replay group's committed offsets (:mod:`crmpilot.ops.replay_book`), committed
after the broker acknowledged them, so running the same replay twice sends
nothing the second time (a crash between the two may send a record twice;
every sink is idempotent). Replaying one copy is enough when several consumer
groups dead-lettered the same source record: every group reads the source
topic again, so the other copies are remembered as ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from confluent_kafka import Consumer, KafkaException, TopicPartition
from opentelemetry.trace import Tracer

from crmpilot.settings import KafkaSettings
from crmpilot.streaming.context import Header
from crmpilot.streaming.dlq import DLQ_HEADERS

from .broker import admin_client, describe_cluster, reader, unavailable
from .dlq import REPLAY_COUNT, DeadLetter, read_dead_letters
from .errors import InvalidSelection, ReplayStateError, TopicNotFound
from .replay_book import PartitionBook
from .sender import Sent, TracedProducer

__all__ = [
    "Action",
    "Decision",
    "ReplayReport",
    "parse_offsets",
    "replayed_headers",
    "decide",
    "load_books",
    "replay",
]

Action = Literal[
    "replay", "replayed", "failed", "duplicate", "refused", "no_source", "source_missing", "already_replayed", "missing"
]
_DROPPED = frozenset(DLQ_HEADERS) | {REPLAY_COUNT}


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens (or happened) to one dead letter."""

    partition: int
    offset: int
    action: Action
    source_topic: str | None = None
    replay_count: int = 0
    detail: str = ""
    duplicate_of: str | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    topic: str
    group: str
    dry_run: bool
    max_replays: int
    decisions: tuple[Decision, ...]
    books: Mapping[int, PartitionBook] = field(default_factory=dict)

    def count(self, action: Action) -> int:
        return sum(d.action == action for d in self.decisions)


def parse_offsets(values: Sequence[str], partitions: Sequence[int]) -> dict[int, set[int]]:
    """``P:N`` (or ``N`` when the topic has one partition) → offsets per partition."""
    chosen: dict[int, set[int]] = {}
    for value in values:
        part, sep, off = value.strip().rpartition(":")
        try:
            offset = int(off)
            partition = int(part) if sep else None
        except ValueError as exc:
            raise InvalidSelection(f"--offset {value!r}: expected PARTITION:OFFSET, e.g. 0:17") from exc
        if partition is None:
            if len(partitions) != 1:
                raise InvalidSelection(
                    f"--offset {value!r}: the topic has {len(partitions)} partitions; write PARTITION:OFFSET, "
                    f"e.g. 0:{offset}"
                )
            partition = partitions[0]
        if partition not in partitions:
            raise InvalidSelection(f"--offset {value!r}: no partition {partition} (partitions {list(partitions)})")
        if offset < 0:
            raise InvalidSelection(f"--offset {value!r}: offsets are not negative")
        chosen.setdefault(partition, set()).add(offset)
    return chosen


def replayed_headers(record: DeadLetter) -> list[Header]:
    """The original headers (the failure's context dropped) plus the incremented replay count."""
    kept = [(k, v) for k, v in record.headers if k not in _DROPPED]
    return [*kept, (REPLAY_COUNT, str(record.replay_count + 1).encode("ascii"))]


def decide(records: Sequence[DeadLetter], *, max_replays: int, topics: Collection[str]) -> list[Decision]:
    """What to do with each record read (pure): replay, or why not."""
    decisions: list[Decision] = []
    chosen: dict[tuple[str, str | None, str | None], str] = {}
    for r in records:
        source = r.source_topic
        base = Decision(r.partition, r.offset, "replay", source, r.replay_count)
        if not source:
            decisions.append(replace(base, action="no_source", detail="no crmpilot.source.topic header"))
        elif source not in topics:
            decisions.append(replace(base, action="source_missing", detail=f"topic {source} does not exist"))
        elif r.replay_count >= max_replays:
            decisions.append(
                replace(base, action="refused", detail=f"replayed {r.replay_count} time(s), limit {max_replays}")
            )
        else:
            origin = (source, r.header("crmpilot.source.partition"), r.header("crmpilot.source.offset"))
            first = chosen.setdefault(origin, r.position)
            if first != r.position:
                decisions.append(
                    replace(base, action="duplicate", detail=f"same source record as {first}", duplicate_of=first)
                )
            else:
                decisions.append(base)
    return decisions


def _replay_consumer(kafka: KafkaSettings, group: str) -> Consumer:
    return Consumer({**kafka.librdkafka(), "group.id": group, "enable.auto.commit": False, "log_level": 0})


def load_books(consumer: Consumer, topic: str, partitions: Sequence[int], timeout: float) -> dict[int, PartitionBook]:
    """The replay group's books for ``topic`` (empty books where it never committed)."""
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout)
    except KafkaException as exc:
        raise ReplayStateError(f"cannot read the replay group's offsets: {exc}") from exc
    return {tp.partition: PartitionBook.parse(tp.offset, tp.metadata) for tp in committed}


def _commit_books(consumer: Consumer, topic: str, books: Mapping[int, PartitionBook]) -> None:
    offsets = [TopicPartition(topic, p, b.watermark, b.metadata()) for p, b in books.items()]
    try:
        result = consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        raise ReplayStateError(
            f"records were replayed but remembering them failed ({exc}); a second run would send them again"
        ) from exc
    failed = [tp for tp in result or () if tp.error is not None]
    if failed:
        raise ReplayStateError(f"committing the replay book failed for partitions {[tp.partition for tp in failed]}")


def replay(
    kafka: KafkaSettings,
    topic: str,
    *,
    offsets: Sequence[str] = (),
    group: str,
    max_replays: int,
    dry_run: bool,
    timeout: float,
    tracer: Tracer | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_sent: Callable[[Sent], None] | None = None,
) -> ReplayReport:
    """Replay the records at ``offsets`` (``P:N``), or every record not yet replayed when none are given.

    ``on_plan(n)`` is called with the number of records about to be sent, ``on_sent`` as each is acknowledged.
    Records the broker did not take are reported ``failed`` and not remembered (the others are).
    """
    admin = admin_client(kafka, "dlq-replay")
    cluster = describe_cluster(admin, kafka.bootstrap, timeout)
    if topic not in cluster.topics:
        raise TopicNotFound(topic)
    records_reader = reader(kafka, "dlq-replay")
    books_consumer = _replay_consumer(kafka, group)
    try:
        partitions = list(range(cluster.topics[topic]))
        watermarks = {
            p: records_reader.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout) for p in partitions
        }
        books = {
            p: b.at_least(watermarks[p][0]) for p, b in load_books(books_consumer, topic, partitions, timeout).items()
        }
        decisions: list[Decision] = []
        if offsets:
            selected = parse_offsets(offsets, partitions)
            ranges: dict[int, tuple[int, int]] = {}
            for p, chosen in selected.items():
                low, high = watermarks[p]
                for o in sorted(chosen):
                    if not low <= o < high:
                        decisions.append(
                            Decision(p, o, "missing", detail=f"partition {p} holds offsets {low}..{high - 1}")
                        )
                    elif books[p].replayed(o):
                        decisions.append(Decision(p, o, "already_replayed", detail=f"by an earlier replay ({group})"))
                live = [o for o in chosen if low <= o < high and not books[p].replayed(o)]
                if live:
                    ranges[p] = (min(live), max(live) + 1)
            records = [
                r
                for r in read_dead_letters(records_reader, topic, ranges, timeout=timeout)
                if r.offset in selected[r.partition]
            ]
        else:
            ranges = {p: (books[p].watermark, watermarks[p][1]) for p in partitions}
            records = [
                r
                for r in read_dead_letters(records_reader, topic, ranges, timeout=timeout)
                if not books[r.partition].replayed(r.offset)
            ]
        decisions += decide(records, max_replays=max_replays, topics=cluster.topics)
        to_send = {(d.partition, d.offset) for d in decisions if d.action == "replay"}
        if dry_run:
            return ReplayReport(topic, group, True, max_replays, tuple(sorted(decisions, key=_order)), books)
        if on_plan is not None:
            on_plan(len(to_send))
        producer = TracedProducer(kafka, client_id="ops-dlq-replay", tracer=tracer, on_sent=on_sent)
        for r in records:
            if (r.partition, r.offset) in to_send:
                producer.send(
                    r.source_topic or "",
                    r.key,
                    r.value,
                    replayed_headers(r),
                    partition=_source_partition(r, cluster.topics),
                    token=(r.partition, r.offset),
                )
                producer.poll()
        producer.flush(timeout)
        outcome = {s.token: s for s in producer.sent}
        final: list[Decision] = []
        for d in decisions:
            if d.action == "replay":
                sent = outcome.get((d.partition, d.offset))
                if sent is not None and sent.error is None:
                    final.append(
                        replace(d, action="replayed", detail=f"to {sent.topic} [{sent.partition}] @{sent.offset}")
                    )
                else:
                    final.append(
                        replace(d, action="failed", detail=(sent.error if sent else None) or "not acknowledged in time")
                    )
            else:
                final.append(d)
        delivered = {d.position for d in final if d.action == "replayed"}
        done: dict[int, set[int]] = {}
        for d in final:
            if d.action == "replayed" or (d.action == "duplicate" and d.duplicate_of in delivered):
                done.setdefault(d.partition, set()).add(d.offset)
        updated = {p: books[p].with_replayed(o) for p, o in done.items()}
        if updated:
            _commit_books(books_consumer, topic, updated)
        return ReplayReport(topic, group, False, max_replays, tuple(sorted(final, key=_order)), {**books, **updated})
    except KafkaException as exc:
        raise unavailable(f"replaying {topic}", exc) from exc
    finally:
        records_reader.close()
        books_consumer.close()


def _source_partition(record: DeadLetter, partitions: Mapping[str, int]) -> int | None:
    """The record's original partition (same key, same partition whoever produced it), if it still exists."""
    raw = record.header("crmpilot.source.partition")
    if raw is None or not raw.isdigit():
        return None
    partition = int(raw)
    return partition if partition < partitions.get(record.source_topic or "", 0) else None


def _order(d: Decision) -> tuple[int, int]:
    return d.partition, d.offset
