"""Count each result once: the result ids already counted, kept in a faust table.

Results arrive at least once. An AI service that crashed after producing a
result produces it again (same result id, a new ``processed_at``, so possibly
another window); the aggregator re-reads, after its own crash, what it had not
committed, and ``extract`` sends those observations again. Counting messages
would count all of them; :class:`SeenResults` remembers every result id
counted, in a table whose changelog survives a crash like the window tables',
so a result already counted is skipped wherever it comes from.

An id is written to the changelog partition of the observation that counted it
(faust's rule for table writes): the partition of its task. Entries are kept
``keep_s`` seconds after the result's ``at`` (as long as the longest windows
it counted in), then deleted from the partition that wrote them, while
handling a later observation of that partition. A result re-produced later than
that would count again, in a window of its own time.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__all__ = ["SeenResults"]


class SeenResults:
    """Result ids counted so far, on ``table`` (result id -> ``[at, partition]``)."""

    def __init__(
        self,
        table: MutableMapping[str, Any],
        *,
        keep_s: float,
        purge_every_s: float = 60.0,
    ) -> None:
        self._table = table
        self._keep_s = keep_s
        self._purge_every_s = purge_every_s
        self._last_purge: dict[int, float] = {}

    def counted(self, result_id: str) -> bool:
        """Whether ``result_id`` was counted already (an empty id, from an older observation, never was)."""
        return bool(result_id) and result_id in self._table

    def add(self, result_id: str, *, at: float, partition: int) -> None:
        """Remember that ``result_id`` (of time ``at``) was counted while handling ``partition``."""
        if result_id:
            self._table[result_id] = [at, partition]

    def expire(self, partition: int, *, now: float) -> int:
        """Delete this partition's ids older than ``keep_s`` (at most once every ``purge_every_s``); how many went."""
        if now - self._last_purge.get(partition, float("-inf")) < self._purge_every_s:
            return 0
        self._last_purge[partition] = now
        cutoff = now - self._keep_s
        old = [rid for rid, (at, part) in list(self._table.items()) if part == partition and at < cutoff]
        for rid in old:
            del self._table[rid]
        return len(old)
