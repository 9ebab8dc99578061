"""Which offset of each partition is safe to commit while records finish out of order.

Records of one partition are handled concurrently (different keys), so they
finish in any order. Kafka keeps one committed position per partition meaning
"everything before this is done", so the only safe position is the *contiguous
watermark*: the lowest offset fetched and not yet finished, or, when all are
finished, one past the highest fetched. :class:`OffsetTracker` keeps that for
one partition; :class:`OffsetBook` for every partition assigned to a consumer,
through assignment, revocation and loss.

Offsets need not be contiguous (compaction, transaction markers): the watermark
only ever points at an offset that was fetched and is unfinished, or past the
last one fetched, so it never skips a record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["OffsetTracker", "OffsetBook", "TP"]

TP = tuple[str, int]
"""A (topic, partition) pair."""


class OffsetTracker:
    """Fetched-but-unfinished offsets of one partition, and its commit watermark."""

    __slots__ = ("_pending", "_open", "_next", "_committed")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # fetched offsets, ascending; the head is unfinished
        self._open: set[int] = set()  # fetched offsets not finished
        self._next: int | None = None  # one past the highest offset fetched
        self._committed: int | None = None

    def begin(self, offset: int) -> bool:
        """Register a fetched record; False (ignore it) if the offset was already seen."""
        if self._next is not None and offset < self._next:
            return False
        self._pending.append(offset)
        self._open.add(offset)
        self._next = offset + 1
        return True

    def finish(self, offset: int) -> None:
        """Mark a fetched record done (result produced and acknowledged, or dead-lettered)."""
        try:
            self._open.remove(offset)
        except KeyError:
            raise KeyError(f"offset {offset} is not in flight") from None
        pending, still_open = self._pending, self._open
        while pending and pending[0] not in still_open:
            pending.popleft()

    @property
    def in_flight(self) -> int:
        """Records fetched and not finished."""
        return len(self._open)

    def watermark(self) -> int | None:
        """The offset to commit: lowest unfinished, or one past the last fetched; None before any."""
        if self._pending:
            return self._pending[0]
        return self._next

    def to_commit(self) -> int | None:
        """The watermark if it moved since the last commit, else None."""
        mark = self.watermark()
        return None if mark is None or mark == self._committed else mark

    def committed(self, offset: int) -> None:
        """Record that ``offset`` was committed on the broker."""
        self._committed = offset


class OffsetBook:
    """One :class:`OffsetTracker` per assigned partition."""

    def __init__(self) -> None:
        self._trackers: dict[TP, OffsetTracker] = {}

    def assign(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self._trackers.setdefault(tp, OffsetTracker())

    def tracker(self, tp: TP) -> OffsetTracker | None:
        """The tracker of an assigned partition, None if not (or no longer) assigned."""
        return self._trackers.get(tp)

    def __contains__(self, tp: object) -> bool:
        return tp in self._trackers

    @property
    def partitions(self) -> list[TP]:
        return list(self._trackers)

    def to_commit(self, partitions: Iterable[TP] | None = None) -> dict[TP, int]:
        """Watermarks that moved since their last commit."""
        chosen = (
            self._trackers
            if partitions is None
            else {tp: self._trackers[tp] for tp in partitions if tp in self._trackers}
        )
        out = {}
        for tp, tracker in chosen.items():
            mark = tracker.to_commit()
            if mark is not None:
                out[tp] = mark
        return out

    def committed(self, offsets: dict[TP, int]) -> None:
        for tp, offset in offsets.items():
            tracker = self._trackers.get(tp)
            if tracker is not None:
                tracker.committed(offset)

    def revoke(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Forget revoked partitions; return their final watermarks still to commit."""
        partitions = list(partitions)
        final = self.to_commit(partitions)
        for tp in partitions:
            self._trackers.pop(tp, None)
        return final

    def lose(self, partitions: Iterable[TP]) -> None:
        """Forget lost partitions without committing: another member may own them already."""
        for tp in partitions:
            self._trackers.pop(tp, None)
