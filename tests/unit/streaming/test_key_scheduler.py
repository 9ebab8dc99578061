"""Keyed lanes: same key in order, different keys concurrently, per-partition drop/cancel."""

from __future__ import annotations

import asyncio
import random

import pytest

from crmpilot.streaming.scheduler import KeyScheduler


def _crash(item: object, exc: Exception) -> None:
    raise AssertionError(f"worker crashed on {item}: {exc!r}")


def test_same_key_runs_in_order_and_keys_run_concurrently() -> None:
    async def main() -> None:
        seen: dict[str, list[int]] = {}
        running = 0
        peak = 0

        async def work(item: tuple[str, int]) -> None:
            nonlocal running, peak
            key, n = item
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(random.uniform(0, 0.005))
            seen.setdefault(key, []).append(n)
            running -= 1

        sched: KeyScheduler[tuple[str, int]] = KeyScheduler(work, _crash)
        for n in range(50):
            for key in ("a", "b", "c", "d"):
                sched.submit("p0", key, (key, n))
        assert sched.pending == 200
        assert await sched.wait(timeout=10)
        assert sched.pending == 0 and sched.lanes == 0
        assert seen == {k: list(range(50)) for k in "abcd"}
        assert peak == 4  # one per key, all keys at once

    asyncio.run(main())


def test_unkeyed_items_run_concurrently() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        started = 0

        async def work(_: int) -> None:
            nonlocal started
            started += 1
            await gate.wait()

        sched: KeyScheduler[int] = KeyScheduler(work, _crash)
        for n in range(20):
            sched.submit("p0", None, n)
        await asyncio.sleep(0.01)
        assert started == 20
        gate.set()
        assert await sched.wait(timeout=5)

    asyncio.run(main())


def test_drop_queued_and_cancel_only_touch_their_group() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        done: list[tuple[str, int]] = []

        async def work(item: tuple[str, int]) -> None:
            await gate.wait()
            done.append(item)

        sched: KeyScheduler[tuple[str, int]] = KeyScheduler(work, _crash)
        for n in range(3):
            sched.submit("p0", "k", ("p0", n))
            sched.submit("p1", "k", ("p1", n))
        await asyncio.sleep(0)
        assert sched.drop_queued({"p0"}) == 2  # item 0 already running
        assert sched.pending == 4
        assert not await sched.wait({"p0"}, timeout=0.02)
        assert await sched.cancel({"p0"}) == 1
        assert sched.pending == 3
        gate.set()
        assert await sched.wait(timeout=5)
        assert done == [("p1", 0), ("p1", 1), ("p1", 2)]
        assert sched.pending == 0

    asyncio.run(main())


def test_an_escaping_worker_error_is_reported_and_the_lane_goes_on() -> None:
    async def main() -> None:
        crashes: list[tuple[int, str]] = []
        done: list[int] = []

        async def work(n: int) -> None:
            if n == 1:
                raise ValueError("bug")
            done.append(n)

        sched: KeyScheduler[int] = KeyScheduler(work, lambda item, exc: crashes.append((item, str(exc))))
        for n in range(3):
            sched.submit("p0", "k", n)
        assert await sched.wait(timeout=5)
        assert crashes == [(1, "bug")] and done == [0, 2]
        assert sched.pending == 0

    asyncio.run(main())


@pytest.mark.parametrize("keys", [1, 7, 300])
def test_many_keys_keep_their_order(keys: int) -> None:
    async def main() -> None:
        seen: dict[int, list[int]] = {}

        async def work(item: tuple[int, int]) -> None:
            key, n = item
            if random.random() < 0.3:
                await asyncio.sleep(0)
            seen.setdefault(key, []).append(n)

        sched: KeyScheduler[tuple[int, int]] = KeyScheduler(work, _crash)
        rng = random.Random(keys)
        counters = dict.fromkeys(range(keys), 0)
        for _ in range(2000):
            key = rng.randrange(keys)
            sched.submit("p", key, (key, counters[key]))
            counters[key] += 1
        assert await sched.wait(timeout=10)
        for key, n in counters.items():
            assert seen.get(key, []) == list(range(n))

    asyncio.run(main())


def test_pending_size_follows_items_through_finish_drop_and_cancel() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def work(_: int) -> None:
            await gate.wait()

        sched: KeyScheduler[int] = KeyScheduler(work, _crash)
        for n in range(4):
            sched.submit("p0", "k", n, size=10)
        sched.submit("p1", "k", 9, size=100)
        await asyncio.sleep(0)
        assert (sched.pending, sched.pending_size) == (5, 140)
        sched.drop_queued({"p0"})  # 3 of p0 not started
        assert (sched.pending, sched.pending_size) == (2, 110)
        await sched.cancel({"p1"})
        assert (sched.pending, sched.pending_size) == (1, 10)
        gate.set()
        assert await sched.wait(timeout=5)
        assert (sched.pending, sched.pending_size) == (0, 0)

    asyncio.run(main())
