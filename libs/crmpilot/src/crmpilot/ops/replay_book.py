"""Which dead letters ``crmpilot dlq replay`` already sent back, kept as the replay group's committed offsets.

Per partition of a dead-letter topic, the replay consumer group (default
``crmpilot-dlq-replay``) commits:

- the **offset** ``W``: every record below ``W`` was replayed;
- the offset **metadata** (``v1:`` then ranges, e.g. ``v1:17-19,25``): records at
  or above ``W`` replayed one by one (``--offset``), while a record before them
  was not (refused at the replay limit, or not selected).

``W`` moves up as soon as the records after it are replayed, so the ranges stay
short. Kafka keeps the metadata with the offset (``offset.metadata.max.bytes``,
4096 by default); a book that would not fit is refused. Because the state is a
committed offset, Kafka's own tools show it (``consumer-groups --describe
--group crmpilot-dlq-replay``: the LAG is the number of dead letters not yet
replayed) and can reset it (``--reset-offsets``) to replay again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ReplayStateError

__all__ = ["PartitionBook", "METADATA_LIMIT"]

METADATA_LIMIT = 4000
_VERSION = "v1:"


@dataclass(frozen=True, slots=True)
class PartitionBook:
    """Replayed offsets of one dead-letter partition: all below ``watermark``, plus ``ahead``."""

    watermark: int = 0
    ahead: frozenset[int] = frozenset()

    def replayed(self, offset: int) -> bool:
        return offset < self.watermark or offset in self.ahead

    def with_replayed(self, offsets: Iterable[int]) -> PartitionBook:
        """This book plus ``offsets``, with the watermark moved over every contiguous replayed offset."""
        ahead = set(self.ahead) | {o for o in offsets if o >= self.watermark}
        watermark = self.watermark
        while watermark in ahead:
            ahead.remove(watermark)
            watermark += 1
        return PartitionBook(watermark, frozenset(ahead))

    def at_least(self, low: int) -> PartitionBook:
        """Records below ``low`` are gone (retention): nothing left to replay there."""
        return self if low <= self.watermark else PartitionBook(low, frozenset()).with_replayed(self.ahead)

    def metadata(self) -> str:
        """The commit metadata: ``v1:`` and the ahead offsets as inclusive ranges."""
        ranges: list[str] = []
        for start, end in _runs(sorted(self.ahead)):
            ranges.append(str(start) if start == end else f"{start}-{end}")
        text = _VERSION + ",".join(ranges)
        if len(text) > METADATA_LIMIT:
            raise ReplayStateError(
                f"{len(ranges)} separate replayed ranges do not fit in the commit metadata; "
                "replay the records in between (or --all) first"
            )
        return text

    @classmethod
    def parse(cls, offset: int, metadata: str | None) -> PartitionBook:
        """The book committed as ``offset`` + ``metadata`` (a negative offset: nothing committed)."""
        watermark = max(0, offset)
        if not metadata:
            return cls(watermark)
        if not metadata.startswith(_VERSION):
            raise ReplayStateError(f"the replay group's commit metadata {metadata[:40]!r} was not written by crmpilot")
        ahead: set[int] = set()
        try:
            for part in filter(None, metadata[len(_VERSION) :].split(",")):
                start, _, end = part.partition("-")
                ahead.update(range(int(start), int(end or start) + 1))
        except ValueError as exc:
            raise ReplayStateError(f"unreadable replay metadata {metadata[:40]!r}") from exc
        return cls(watermark).with_replayed(ahead)


def _runs(offsets: list[int]) -> Iterable[tuple[int, int]]:
    if not offsets:
        return
    start = prev = offsets[0]
    for o in offsets[1:]:
        if o != prev + 1:
            yield start, prev
            start = o
        prev = o
    yield start, prev
