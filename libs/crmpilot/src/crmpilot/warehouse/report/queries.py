"""Read the dashboard's figures from the ``bi`` views, from a given UTC day on.

Only views are read (never the ``warehouse`` tables), so the dashboard shows
what any BI tool pointed at ``bi`` would. The daily views are summed over the
period and rates recomputed from the sums; latency percentiles come from the
per-write view ``bi.event_to_crm_latency``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any, LiteralString

import psycopg

from .figures import (
    Automation,
    AutomationDay,
    ConfidenceBucket,
    CostDay,
    CostModel,
    CrmLatency,
    DlqTopic,
    Figures,
    Override,
    TicketVolume,
    Totals,
    VolumeDay,
    rate,
)

__all__ = ["load_figures"]


def _rows(conn: psycopg.Connection[Any], query: LiteralString, since: date) -> list[tuple[Any, ...]]:
    return conn.execute(query, {"since": since}).fetchall()


def _automation(results: int, auto: int, suggest: int, skip: int) -> Automation:
    return Automation(int(results), int(auto), int(suggest), int(skip), rate(int(auto), int(results)))


def _cost_model(
    task: str, provider: str, model: str, n: int, tokens_in: int, tokens_out: int, cost: float
) -> CostModel:
    per_1000 = 1000 / n
    return CostModel(task, provider, model, n, tokens_in, tokens_out, cost,
                     round(cost * per_1000, 6), round((tokens_in + tokens_out) * per_1000, 1))  # fmt: skip


def load_figures(conn: psycopg.Connection[Any], since: date) -> Figures:
    """Every figure of the dashboard for the days from ``since`` on."""
    volume = [
        VolumeDay(day, task, int(n))
        for day, task, n in _rows(
            conn,
            "select day, task, sum(results) from bi.volume_daily where day >= %(since)s group by 1, 2 order by 1, 2",
            since,
        )
    ]
    tickets = [
        TicketVolume(category, priority, int(n))
        for category, priority, n in _rows(
            conn,
            "select category, priority, sum(tickets) from bi.ticket_volume_daily where day >= %(since)s"
            " group by 1, 2 order by 3 desc, 1, 2",
            since,
        )
    ]
    by_task = {
        task: _automation(*counts)
        for task, *counts in _rows(
            conn,
            "select task, sum(results), sum(auto_applied), sum(suggested), sum(skipped)"
            " from bi.automation_rate_daily where day >= %(since)s group by 1 order by 1",
            since,
        )
    }
    by_day = [
        AutomationDay(day, _automation(*counts))
        for day, *counts in _rows(
            conn,
            "select day, sum(results), sum(auto_applied), sum(suggested), sum(skipped)"
            " from bi.automation_rate_daily where day >= %(since)s group by 1 order by 1",
            since,
        )
    ]
    cost_days = [
        CostDay(day, task, int(n), int(tin), int(tout), float(cost))
        for day, task, n, tin, tout, cost in _rows(
            conn,
            "select day, task, sum(results), sum(tokens_in), sum(tokens_out), sum(cost_usd)"
            " from bi.cost_daily where day >= %(since)s group by 1, 2 order by 1, 2",
            since,
        )
    ]
    cost_models = [
        _cost_model(task, provider, model, int(n), int(tin), int(tout), float(cost))
        for task, provider, model, n, tin, tout, cost in _rows(
            conn,
            "select task, provider, model, sum(results), sum(tokens_in), sum(tokens_out), sum(cost_usd)"
            " from bi.cost_daily where day >= %(since)s group by 1, 2, 3 order by 1, 2, 3",
            since,
        )
    ]
    overrides = [
        Override(task, field, prompt_id, version, int(written), int(overridden), rate(int(overridden), int(written)))
        for task, field, prompt_id, version, written, overridden in _rows(
            conn,
            "select task, field, prompt_id, prompt_version, sum(written), sum(overridden)"
            " from bi.override_rate_daily where day >= %(since)s group by 1, 2, 3, 4 order by 1, 2, 3, 4",
            since,
        )
    ]
    confidence = [
        ConfidenceBucket(field, float(bucket), decision, int(n))
        for field, bucket, decision, n in _rows(
            conn,
            "select field, bucket, review_decision, sum(results) from bi.confidence_distribution_daily"
            " where day >= %(since)s group by 1, 2, 3 order by 1, 2, 3",
            since,
        )
    ]
    dlq = [
        DlqTopic(topic, int(records), int(dead), rate(int(dead), int(records)))
        for topic, records, dead in _rows(
            conn,
            "select topic, sum(records), sum(dead_lettered) from bi.dlq_rate_daily where day >= %(since)s"
            " group by 1 order by 3 desc, 1",
            since,
        )
    ]
    percentiles = (
        "count(*), percentile_cont(0.5) within group (order by latency_seconds),"
        " percentile_cont(0.95) within group (order by latency_seconds), max(latency_seconds)"
    )
    latency = [
        CrmLatency(task, field, int(n), float(p50), float(p95), float(top))
        for task, field, n, p50, p95, top in _rows(
            conn,
            "select task, field, " + percentiles + " from bi.event_to_crm_latency"
            " where applied_at >= %(since)s::date group by 1, 2 order by 1, 2",
            since,
        )
    ]
    overall = _rows(
        conn, "select " + percentiles + " from bi.event_to_crm_latency where applied_at >= %(since)s::date", since
    )
    crm_writes, _, crm_p95, _ = overall[0]
    return Figures(
        since=since,
        generated_at=datetime.now(UTC),
        totals=_totals(by_task, cost_days, overrides, dlq, int(crm_writes), crm_p95),
        volume_by_day=volume,
        tickets=tickets,
        automation_by_task=by_task,
        automation_by_day=by_day,
        cost_by_day=cost_days,
        cost_by_model=cost_models,
        overrides=overrides,
        confidence=confidence,
        dlq=dlq,
        crm_latency=latency,
    )


def _totals(
    by_task: dict[str, Automation],
    cost_days: list[CostDay],
    overrides: list[Override],
    dlq: list[DlqTopic],
    crm_writes: int,
    crm_p95: float | None,
) -> Totals:
    decisions: dict[str, int] = defaultdict(int)
    for a in by_task.values():
        decisions["results"] += a.results
        decisions["auto"] += a.auto_applied
        decisions["suggest"] += a.suggested
        decisions["skip"] += a.skipped
    results = decisions["results"]
    cost = round(sum(c.cost_usd for c in cost_days), 6)
    written = sum(o.written for o in overrides)
    overridden = sum(o.overridden for o in overrides)
    records = sum(d.records for d in dlq)
    dead = sum(d.dead_lettered for d in dlq)
    return Totals(
        results=results,
        automation=_automation(results, decisions["auto"], decisions["suggest"], decisions["skip"]),
        cost_usd=cost,
        cost_usd_per_1000=round(cost * 1000 / results, 6) if results else None,
        tokens=sum(c.tokens_in + c.tokens_out for c in cost_days),
        written=written,
        overridden=overridden,
        override_rate=rate(overridden, written),
        records=records,
        dead_lettered=dead,
        dlq_rate=rate(dead, records),
        crm_writes=crm_writes,
        crm_p95_s=None if crm_p95 is None else float(crm_p95),
    )
