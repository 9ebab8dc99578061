"""Replay decisions without a broker: the book of replayed offsets, selections, headers, refusals."""

from __future__ import annotations

import pytest

from crmpilot.ops.dlq import DeadLetter
from crmpilot.ops.errors import InvalidSelection, ReplayStateError
from crmpilot.ops.replay import decide, parse_offsets, replayed_headers
from crmpilot.ops.replay_book import PartitionBook


def test_book_moves_its_watermark_over_contiguous_replays_and_keeps_the_rest_ahead() -> None:
    book = PartitionBook().with_replayed([2, 3, 7])
    assert (book.watermark, book.ahead) == (0, frozenset({2, 3, 7}))
    assert not book.replayed(0) and book.replayed(3) and not book.replayed(4)
    book = book.with_replayed([0, 1])
    assert (book.watermark, book.ahead) == (4, frozenset({7}))
    assert book.metadata() == "v1:7"
    assert PartitionBook.parse(4, "v1:7") == book
    assert PartitionBook(10).with_replayed([3]) == PartitionBook(10)  # already below the watermark


def test_book_round_trips_ranges_through_commit_metadata() -> None:
    book = PartitionBook(5).with_replayed([7, 8, 9, 12, 20, 21])
    assert book.metadata() == "v1:7-9,12,20-21"
    assert PartitionBook.parse(5, book.metadata()) == book
    assert PartitionBook.parse(-1001, None) == PartitionBook(0)  # never committed
    assert PartitionBook.parse(3, "v1:3-4,9") == PartitionBook(5, frozenset({9}))  # normalised on read


def test_records_gone_by_retention_are_not_waited_for() -> None:
    assert PartitionBook(2, frozenset({9})).at_least(5) == PartitionBook(5, frozenset({9}))
    assert PartitionBook(2, frozenset({5, 6})).at_least(5) == PartitionBook(7)
    assert PartitionBook(8).at_least(5) == PartitionBook(8)


def test_foreign_or_oversized_metadata_is_refused() -> None:
    with pytest.raises(ReplayStateError, match="not written by crmpilot"):
        PartitionBook.parse(0, "someone else's")
    with pytest.raises(ReplayStateError, match="unreadable"):
        PartitionBook.parse(0, "v1:x-y")
    with pytest.raises(ReplayStateError, match="do not fit"):
        PartitionBook(0, frozenset(range(1, 4000, 2))).metadata()


def test_offsets_are_partition_colon_offset_or_bare_on_a_single_partition() -> None:
    assert parse_offsets(["0:17", "2:3", "0:18"], [0, 1, 2]) == {0: {17, 18}, 2: {3}}
    assert parse_offsets(["5"], [0]) == {0: {5}}
    for bad, message in (
        ("5", "3 partitions"),
        ("7:1", "no partition 7"),
        ("a:b", "PARTITION:OFFSET"),
        ("0:-1", "not negative"),
    ):
        with pytest.raises(InvalidSelection, match=message):
            parse_offsets([bad], [0, 1, 2])


def _dead(
    offset: int, headers: dict[str, str], *, partition: int = 0, extra: tuple[tuple[str, bytes], ...] = ()
) -> DeadLetter:
    encoded = tuple((k, v.encode()) for k, v in headers.items())
    return DeadLetter("t.dlq", partition, offset, b"k", b"v", extra + encoded, None)


FAILED = {
    "crmpilot.error.class": "x.Boom",
    "crmpilot.error.code": "boom",
    "crmpilot.source.topic": "t",
    "crmpilot.source.partition": "1",
    "crmpilot.source.offset": "40",
    "crmpilot.consumer.group": "g1",
}


def test_replayed_records_keep_original_headers_drop_the_failure_and_count_replays() -> None:
    original = (("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"), ("x-tenant", b"acme"))
    first = _dead(0, FAILED, extra=original)
    assert replayed_headers(first) == [*original, ("crmpilot.replay.count", b"1")]
    again = _dead(1, {**FAILED, "crmpilot.replay.count": "2"}, extra=original)
    assert replayed_headers(again)[-1] == ("crmpilot.replay.count", b"3")
    assert not any(k.startswith("crmpilot.error") for k, _ in replayed_headers(again))


def test_decisions_refuse_at_the_limit_and_replay_one_copy_per_source_record() -> None:
    records = [
        _dead(0, FAILED),
        _dead(1, {**FAILED, "crmpilot.consumer.group": "g2"}),  # the same source record, another group
        _dead(2, {**FAILED, "crmpilot.source.offset": "41", "crmpilot.replay.count": "3"}),
        _dead(3, {**FAILED, "crmpilot.source.offset": "42", "crmpilot.replay.count": "2"}),
        _dead(4, {"crmpilot.error.class": "x"}),
        _dead(5, {**FAILED, "crmpilot.source.topic": "gone"}),
    ]
    actions = [(d.offset, d.action) for d in decide(records, max_replays=3, topics={"t"})]
    assert actions == [
        (0, "replay"),
        (1, "duplicate"),
        (2, "refused"),
        (3, "replay"),
        (4, "no_source"),
        (5, "source_missing"),
    ]
    assert decide(records[:2], max_replays=3, topics={"t"})[1].duplicate_of == "0:0"
