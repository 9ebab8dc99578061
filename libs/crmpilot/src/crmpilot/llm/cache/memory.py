"""An in-process LRU response cache with optional TTL: the default, and the fake for tests."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from crmpilot.llm.cache.base import CachedAnswer, CacheKey

__all__ = ["MemoryCache"]


class MemoryCache:
    """Keeps at most ``max_entries`` answers, evicting the least recently used."""

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[CachedAnswer, float | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: CacheKey) -> CachedAnswer | None:
        item = self._items.get(key.digest)
        if item is None:
            return None
        answer, expires = item
        if expires is not None and self._clock() >= expires:
            del self._items[key.digest]
            return None
        self._items.move_to_end(key.digest)
        return answer

    async def put(self, key: CacheKey, answer: CachedAnswer, *, ttl: float | None = None) -> None:
        expires = None if ttl is None else self._clock() + ttl
        self._items[key.digest] = (answer, expires)
        self._items.move_to_end(key.digest)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    async def aclose(self) -> None:
        self._items.clear()
