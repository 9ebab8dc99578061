"""Micro-batching: many concurrent per-record awaits served by one batch call.

The runtime runs one handler call per record, many keys at a time. Sinks pay
per call (a Salesforce API call, a database round trip), so a handler awaits
``batcher.submit(item)``; the batcher gathers items arriving within
``max_delay`` seconds (or until ``max_size``) and runs ``flush(items)`` once, in
a worker thread, then hands each caller its own result — or the batch's
exception, so every record of a failed batch is retried or dead-lettered by the
runtime as usual. Ordering per key is kept by the runtime: a key's next record
is not submitted before its previous one resolved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls into ``flush`` calls of at most ``max_size`` items.

    ``flush`` is synchronous (it runs in a thread) and returns one result per item, in order.
    """

    def __init__(
        self, flush: Callable[[Sequence[T]], Sequence[R]], *, max_size: int = 200, max_delay: float = 0.05
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._flush = flush
        self._max_size = max_size
        self._max_delay = max_delay
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self._max_size:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay, self._dispatch)
        return await future

    async def drain(self) -> None:
        """Flush what is pending and wait for every running batch."""
        self._dispatch()
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        items = [item for item, _ in batch]
        try:
            results = await asyncio.to_thread(self._flush, items)
            if len(results) != len(items):
                raise RuntimeError(f"flush returned {len(results)} results for {len(items)} items")
        except BaseException as exc:  # every caller gets the batch's own error, to retry or dead-letter
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
