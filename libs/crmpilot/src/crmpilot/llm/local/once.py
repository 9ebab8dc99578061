"""Compute a value once per key, even when many coroutines ask for it at the same time.

Used for what every call needs and no call should pay for twice: label and
anchor embeddings, zero-shot heads. A caller that is cancelled does not cancel
the shared computation; a failed computation is not cached, the next call retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Once"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Once(Generic[K, V]):
    def __init__(self) -> None:
        self._done: dict[K, V] = {}
        self._running: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        if key in self._done:
            return self._done[key]
        loop = asyncio.get_running_loop()
        task = self._running.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._compute(key, compute))
            self._running[key] = task
        return await asyncio.shield(task)

    async def _compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await compute()
            self._done[key] = value
            return value
        finally:
            self._running.pop(key, None)
