"""Micro-batching: concurrent submits share one flush; a failed flush fails every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from crmpilot.streaming.microbatch import MicroBatcher


def test_concurrent_submits_are_served_by_few_flushes() -> None:
    seen: list[list[int]] = []

    def flush(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(flush, max_size=50, max_delay=0.02)
        return await asyncio.gather(*(batcher.submit(i) for i in range(120)))

    results = asyncio.run(main())
    assert results == [i * 10 for i in range(120)]
    assert [len(b) for b in seen] == [50, 50, 20]


def test_a_failed_flush_fails_every_caller_of_that_batch() -> None:
    def flush(items: Sequence[int]) -> list[int]:
        raise ConnectionError("database down")

    async def main() -> list[object]:
        batcher: MicroBatcher[int, int] = MicroBatcher(flush, max_size=10, max_delay=0.01)
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)


def test_a_flush_returning_the_wrong_count_is_an_error_not_a_silent_mismatch() -> None:
    async def main() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [1], max_size=10, max_delay=0.01)
        await asyncio.gather(batcher.submit(1), batcher.submit(2))

    with pytest.raises(RuntimeError, match="2 items"):
        asyncio.run(main())
