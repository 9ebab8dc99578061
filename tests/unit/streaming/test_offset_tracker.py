"""The commit watermark: never past an unfinished offset, whatever the completion order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmpilot.streaming.offsets import OffsetBook, OffsetTracker


def test_watermark_waits_for_the_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    assert t.watermark() is None
    for o in (10, 11, 12, 13):
        assert t.begin(o)
    t.finish(12)
    t.finish(13)
    assert t.watermark() == 10
    t.finish(10)
    assert t.watermark() == 11
    t.finish(11)
    assert t.watermark() == 14
    assert t.in_flight == 0


def test_gaps_in_offsets_are_not_waited_for() -> None:
    t = OffsetTracker()
    for o in (5, 9, 20):  # compaction / transaction markers leave holes
        t.begin(o)
    t.finish(5)
    assert t.watermark() == 9
    t.finish(20)
    assert t.watermark() == 9
    t.finish(9)
    assert t.watermark() == 21


def test_redelivered_offsets_are_ignored_and_finishing_twice_is_an_error() -> None:
    t = OffsetTracker()
    assert t.begin(0) and t.begin(1)
    assert not t.begin(1)
    assert not t.begin(0)
    t.finish(0)
    with pytest.raises(KeyError):
        t.finish(0)
    with pytest.raises(KeyError):
        t.finish(7)


def test_to_commit_only_when_the_watermark_moved() -> None:
    t = OffsetTracker()
    assert t.to_commit() is None
    t.begin(0)
    assert t.to_commit() == 0  # nothing done yet; committing 0 is harmless and correct
    t.committed(0)
    assert t.to_commit() is None
    t.finish(0)
    assert t.to_commit() == 1


def test_book_revoke_returns_safe_watermarks_and_forgets_the_partition() -> None:
    book = OffsetBook()
    a, b = ("t", 0), ("t", 1)
    book.assign([a, b])
    for o in range(5):
        book.tracker(a).begin(o)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    book.tracker(a).finish(0)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    book.tracker(a).finish(3)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    book.tracker(b).begin(7)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    book.tracker(b).finish(7)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    assert book.revoke([a]) == {a: 1}  # 1 unfinished: never past it
    assert a not in book and b in book
    assert book.to_commit() == {b: 8}
    book.committed({b: 8, a: 99})  # a committed offset for a revoked partition is ignored
    assert book.to_commit() == {}


def test_book_lose_forgets_without_offsets() -> None:
    book = OffsetBook()
    book.assign([("t", 0)])
    book.tracker(("t", 0)).begin(0)  # type: ignore[union-attr]  # the partitions were just assigned, so each has a tracker
    book.lose([("t", 0)])
    assert book.partitions == []
    assert book.to_commit() == {}


@st.composite
def _schedules(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, int]]]:
    """Increasing offsets with gaps, and an interleaving of begin/finish events."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=60))
    offsets = []
    current = draw(st.integers(min_value=0, max_value=1000))
    for g in gaps:
        offsets.append(current)
        current += g
    finish_order = draw(st.permutations(offsets))
    finish_subset = finish_order[: draw(st.integers(min_value=0, max_value=len(offsets)))]
    # interleave: a finish may only come after its begin
    events: list[tuple[str, int]] = []
    begun: set[int] = set()
    queue = list(offsets)
    pending_finishes = list(finish_subset)
    while queue or pending_finishes:
        ready = [o for o in pending_finishes if o in begun]
        if queue and (not ready or draw(st.booleans())):
            o = queue.pop(0)
            begun.add(o)
            events.append(("begin", o))
        else:
            o = ready[draw(st.integers(min_value=0, max_value=len(ready) - 1))]
            pending_finishes.remove(o)
            events.append(("finish", o))
    return offsets, events


@given(_schedules())
def test_property_watermark_never_passes_an_unfinished_offset(
    schedule: tuple[list[int], list[tuple[str, int]]],
) -> None:
    _, events = schedule
    t = OffsetTracker()
    begun: list[int] = []
    finished: set[int] = set()
    for kind, offset in events:
        if kind == "begin":
            t.begin(offset)
            begun.append(offset)
        else:
            t.finish(offset)
            finished.add(offset)
        mark = t.watermark()
        unfinished = [o for o in begun if o not in finished]
        if unfinished:
            assert mark == min(unfinished)  # never past it, and not lagging behind it either
        else:
            assert mark == max(begun) + 1
        assert t.in_flight == len(unfinished)
