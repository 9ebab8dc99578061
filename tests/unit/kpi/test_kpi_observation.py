"""From a result event to the observation the windows count, and on to warehouse rows and JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crmpilot.enrichments import load_registry
from crmpilot.events import CaseEvent, Envelope, ReviewDecision
from crmpilot.warehouse.kpi import InMemoryKpiStore, KpiWindow
from kpi_aggregator.observation import enrichment_dimensions, observe, split_key, table_keys
from kpi_aggregator.stats import WindowStats
from kpi_aggregator.windows import PendingWindows, kpi_window, window_json
from tests.kpikit import AT, email, request, ticket


def test_each_task_counts_under_its_own_dimension() -> None:
    t = observe(ticket("t1", category="Refund", latency_ms=812.5, cost_usd="0.0031", cache_hit=True))
    assert t is not None
    assert (t.task, t.dimension, t.review, t.latency_ms, t.cost_usd, t.cache_hit) == (
        "classify_ticket", "category=Refund", "auto_apply", 812.5, "0.0031", True,
    )  # fmt: skip
    assert t.at == AT.timestamp()
    assert table_keys(t) == ("classify_ticket|all", "classify_ticket|category=Refund")
    dims = enrichment_dimensions(load_registry([]))  # as the aggregator reads them: the built-in score_request's band
    e, r = observe(email("e1"), dims), observe(request("r1"), dims)
    assert e is not None and r is not None
    assert (e.task, e.dimension, r.task, r.dimension) == (
        "summarize_email",
        "urgency=high",
        "score_request",
        "band=hot",
    )
    assert table_keys(r) == ("score_request|all", "score_request|band=hot")
    assert split_key("score_request|band=hot") == ("score_request", "band=hot")
    cold = observe(request("r2", band="cold"), dims)
    assert cold is not None and cold.dimension == "band=cold"


def test_source_events_are_not_observed() -> None:
    case = Envelope[CaseEvent](
        source="crm", type="crm.case.created", schemaversion=1, subject="c1", data=CaseEvent(case_id="c1")
    )
    assert observe(case) is None


def _window(start: datetime, results: int) -> KpiWindow:
    stats = WindowStats()
    for _ in range(results):
        stats.add(
            review="auto_apply", latency_ms=200.0, cost_usd=Decimal("0.001"), tokens_in=5, tokens_out=1, cache_hit=False
        )
    return kpi_window(60, "classify_ticket|all", start.timestamp(), stats)


def test_a_window_as_warehouse_row_and_as_json() -> None:
    stats = WindowStats()
    samples: tuple[tuple[ReviewDecision, float], ...] = (("auto_apply", 100.0), ("auto_apply", 300.0), ("skip", 200.0))
    for review, latency in samples:
        stats.add(
            review=review, latency_ms=latency, cost_usd=Decimal("0.002"), tokens_in=10, tokens_out=3, cache_hit=False
        )
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    row = kpi_window(60, "classify_ticket|category=Billing", start.timestamp(), stats)
    assert (row.window_start, row.window_size, row.task, row.dimension) == (
        start,
        60,
        "classify_ticket",
        "category=Billing",
    )
    assert (row.results, row.auto_applied, row.suggested, row.skipped) == (3, 2, 0, 1)
    assert row.cost_usd == Decimal("0.006")
    assert row.max_latency_ms == 300.0
    shown = window_json(row)
    assert shown["window_start"] == "2024-05-01T09:00:00+00:00"
    assert shown["window_end"] == "2024-05-01T09:01:00+00:00"
    assert shown["automation_rate"] == 0.6667
    assert shown["cost_usd"] == 0.006
    assert shown["p95_latency_ms"] == row.p95_latency_ms == 300.0


def test_pending_windows_keep_the_latest_snapshot_and_survive_a_failed_flush() -> None:
    pending = PendingWindows()
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    pending.put(_window(start, 1))
    pending.put(_window(start, 2))
    pending.put(_window(start - timedelta(minutes=1), 5))
    taken = pending.drain()
    assert [(w.window_start, w.results) for w in taken] == [(start - timedelta(minutes=1), 5), (start, 2)]
    assert len(pending) == 0
    pending.put(_window(start, 3))  # arrived while the flush was failing
    pending.give_back(taken)
    assert sorted((w.window_start, w.results) for w in pending.drain()) == [
        (start - timedelta(minutes=1), 5),
        (start, 3),
    ]


def test_the_store_never_lowers_a_count() -> None:
    store = InMemoryKpiStore()
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert store.upsert_windows([_window(start, 3)]) == 1
    assert store.upsert_windows([_window(start, 3)]) == 1  # the same snapshot again: same row
    assert store.upsert_windows([_window(start, 2)]) == 0  # a stale snapshot is ignored
    assert [w.results for w in store.windows.values()] == [3]
