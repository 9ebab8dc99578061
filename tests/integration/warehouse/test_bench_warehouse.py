"""The warehouse benchmark (``make bench``) runs end to end at a tiny size, so it cannot rot."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

# the repository root, so ``tests.bench`` imports however pytest was started
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.bench import bench_warehouse
from tests.bench.bench_warehouse import records, run
from warehouse_writer.handler import WarehouseWriter

pytestmark = pytest.mark.integration


def _bench_databases(server_url: str) -> list[str]:
    with psycopg.connect(server_url) as conn:
        rows = conn.execute(
            "select datname from pg_database where datname = %s",
            (f"crmpilot_bench_{os.getpid()}",),
        )
        return [r[0] for r in rows.fetchall()]


def test_bench_warehouse_runs_and_checks_its_rows(server_url: str) -> None:
    figures = run(50, server_url)
    assert figures.rows == 100
    assert figures.batches >= 1
    assert (
        min(
            figures.naive_rows_per_s,
            figures.batched_rows_per_s,
            figures.replay_rows_per_s,
        )
        > 0
    )
    table = "\n".join(figures.lines())
    assert "(a) row by row" in table and "(b) warehouse_writer batches" in table and "replay" in table
    assert _bench_databases(server_url) == []  # the throwaway database is dropped


def test_bench_warehouse_fails_loudly_when_a_row_is_missing(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class LosesOne(WarehouseWriter):
        def _flush(self, items: Sequence[tuple[Any, Any]]) -> list[int]:
            super()._flush(items[1:])
            return [1] * len(items)

    monkeypatch.setattr(bench_warehouse, "WarehouseWriter", LosesOne)
    with pytest.raises(AssertionError, match="expected 20"):
        run(20, server_url)
    assert _bench_databases(server_url) == []


def test_bench_records_are_results_with_their_source_events() -> None:
    batch = records(3, tag="t")
    assert [e.type for e, _ in batch] == [
        "crm.case.created",
        "ai.ticket.classified",
    ] * 3
    for (case, _), (result, position) in zip(batch[::2], batch[1::2], strict=True):
        assert result.data.provenance.source_event_id == case.id
        assert result.data.provenance.cost_usd > 0 and position.topic == "ai.ticket.classified"
