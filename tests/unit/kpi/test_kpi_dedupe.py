"""The aggregator counts each result id once, and forgets ids once their windows are gone."""

from __future__ import annotations

from kpi_aggregator.dedupe import SeenResults
from kpi_aggregator.observation import observe
from tests.kpikit import AT, ticket


def test_a_result_is_counted_once_whatever_its_time() -> None:
    table: dict[str, object] = {}
    seen = SeenResults(table, keep_s=3600)
    first = observe(ticket("s1"))
    again = observe(ticket("s1", processed_at=AT.replace(minute=5)))  # re-produced after a crash: same id, new time
    assert first is not None and again is not None and first.result_id == again.result_id != ""
    assert not seen.counted(first.result_id)
    seen.add(first.result_id, at=first.at, partition=2)
    assert seen.counted(again.result_id)
    assert table == {first.result_id: [first.at, 2]}


def test_observations_without_an_id_are_always_counted() -> None:
    seen = SeenResults({}, keep_s=3600)
    seen.add("", at=0.0, partition=0)
    assert not seen.counted("")


def test_old_ids_expire_only_from_their_own_partition_and_at_most_once_a_minute() -> None:
    table: dict[str, object] = {}
    seen = SeenResults(table, keep_s=100, purge_every_s=60)
    seen.add("old-p0", at=1000.0, partition=0)
    seen.add("old-p1", at=1000.0, partition=1)
    seen.add("new-p0", at=1950.0, partition=0)
    assert seen.expire(0, now=2000.0) == 1  # cutoff 1900: old-p0 goes, new-p0 stays, p1's id is not ours to delete
    assert sorted(table) == ["new-p0", "old-p1"]
    assert seen.expire(0, now=2050.0) == 0  # new-p0 is old by now, but the last purge was under 60 s ago
    assert seen.expire(0, now=2100.0) == 1
    assert sorted(table) == ["old-p1"]
