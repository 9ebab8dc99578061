"""Keyed concurrency: items of one lane run in order, different lanes run concurrently.

The runtime submits each fetched record to the lane of its key (``ordering="key"``),
of its partition (``"partition"``) or to a lane of its own (``"unordered"``,
``lane=None``). A lane is an asyncio task that works through its queue one item
at a time and ends when the queue is empty, so idle keys cost nothing. Lanes
belong to a *group* (the record's partition) so that a revoked partition's work
can be dropped, awaited or cancelled without touching the others.

The scheduler bounds nothing itself: the worker takes a concurrency slot for the
work it does (so a record waiting out a retry backoff holds no slot), and the
runtime pauses fetching when :attr:`KeyScheduler.pending` is at its limit.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["KeyScheduler"]

T = TypeVar("T")


@dataclass(eq=False)
class _Lane(Generic[T]):
    group: Hashable
    queue: deque[tuple[T, int]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class KeyScheduler(Generic[T]):
    """Run submitted items through ``worker``, in order per lane, lanes concurrently.

    ``on_crash`` receives any exception the worker lets escape (a bug: the worker
    is expected to classify its own errors); the lane then moves on.
    """

    def __init__(self, worker: Callable[[T], Awaitable[None]], on_crash: Callable[[T, Exception], None]) -> None:
        self._worker = worker
        self._on_crash = on_crash
        self._lanes: dict[tuple[Hashable, Hashable], _Lane[T]] = {}
        self._pending = 0
        self._pending_size = 0
        self._solo = itertools.count()

    @property
    def pending(self) -> int:
        """Items submitted and not finished (queued or running)."""
        return self._pending

    @property
    def pending_size(self) -> int:
        """Sum of the ``size`` of items submitted and not finished (e.g. bytes)."""
        return self._pending_size

    @property
    def lanes(self) -> int:
        """Lanes with queued or running work."""
        return len(self._lanes)

    def submit(self, group: Hashable, lane: Hashable | None, item: T, size: int = 0) -> None:
        """Queue ``item`` behind earlier items of the same lane (``None``: a lane of its own)."""
        key = (group, ("solo", next(self._solo)) if lane is None else ("lane", lane))
        state = self._lanes.get(key)
        if state is None:
            state = self._lanes[key] = _Lane(group)
        state.queue.append((item, size))
        self._pending += 1
        self._pending_size += size
        if state.task is None:
            state.task = asyncio.get_running_loop().create_task(self._run(key, state), name=f"lane:{key!r}")

    def drop_queued(self, groups: Collection[Hashable] | None = None) -> int:
        """Forget items of ``groups`` (all if None) that have not started; return how many."""
        dropped = 0
        for state in self._lanes.values():
            if groups is None or state.group in groups:
                dropped += self._forget(state)
        return dropped

    async def wait(self, groups: Collection[Hashable] | None = None, timeout: float | None = None) -> bool:
        """Wait until the lanes of ``groups`` (all if None) are idle; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            tasks = [
                s.task for s in self._lanes.values() if s.task is not None and (groups is None or s.group in groups)
            ]
            if not tasks:
                return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(tasks, timeout=remaining)

    async def cancel(self, groups: Collection[Hashable] | None = None) -> int:
        """Cancel the lanes of ``groups`` (all if None), queued items included; return how many lanes."""
        tasks = [s.task for s in self._lanes.values() if s.task is not None and (groups is None or s.group in groups)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def _run(self, key: tuple[Hashable, Hashable], state: _Lane[T]) -> None:
        try:
            while state.queue:
                item, size = state.queue.popleft()
                try:
                    await self._worker(item)
                except Exception as exc:  # noqa: BLE001 - escalated to the owner, never swallowed
                    self._on_crash(item, exc)
                finally:
                    self._pending -= 1
                    self._pending_size -= size
        finally:
            self._forget(state)
            if self._lanes.get(key) is state:
                del self._lanes[key]

    def _forget(self, state: _Lane[T]) -> int:
        """Drop the queued items of a lane from the books; return how many."""
        count = len(state.queue)
        self._pending -= count
        self._pending_size -= sum(size for _, size in state.queue)
        state.queue.clear()
        return count
