"""The few numbers a KPI needs from one AI result, and the table keys it counts under.

Results are decoded once and reduced to an :class:`Observation`, which travels
on the aggregator's internal topic keyed by task (so each task's windows live
on one partition, and one worker). Windows are by ``at``: the time the result
was produced (``provenance.processed_at``), so replaying a topic puts every
result in the same window again.

Each result counts under two table keys: ``<task>|all`` and
``<task>|<field>=<value>`` for the task's main dimension: the ticket category,
the email urgency, the request band; for a declared enrichment, its first enum
output (:func:`enrichment_dimensions`), else its total only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import faust

from crmpilot.enrichments.spec import EnrichmentSpec, EnumOutput
from crmpilot.events import EmailSummary, EnrichmentResult, Envelope, TicketClassification

__all__ = ["ALL", "Observation", "enrichment_dimensions", "observe", "split_key", "table_keys"]

ALL = "all"
"""The dimension of a task's total."""


class Observation(faust.Record, serializer="json"):
    """One AI result, reduced to what the windows aggregate."""

    task: str
    dimension: str
    review: str
    latency_ms: float
    cost_usd: str
    tokens_in: int
    tokens_out: int
    cache_hit: bool
    at: float
    result_id: str = ""  # counted once per id; empty in observations sent before ids were


def enrichment_dimensions(specs: Iterable[EnrichmentSpec]) -> dict[str, str]:
    """Enrichment name -> the output its KPIs are broken down by: its first enum output."""
    out = {}
    for spec in specs:
        field = next((name for name, o in spec.outputs.items() if isinstance(o, EnumOutput)), None)
        if field is not None:
            out[spec.name] = field
    return out


def observe(envelope: Envelope[Any], dimensions: Mapping[str, str] | None = None) -> Observation | None:
    """The observation of a result event; ``None`` for any other event type.

    ``dimensions``: per declared enrichment, the output to break it down by
    (:func:`enrichment_dimensions`); one not listed counts under its total only.
    """
    result = envelope.data
    if isinstance(result, EnrichmentResult):
        field = (dimensions or {}).get(result.task)
        value = result.outputs.get(field) if field else None
        dimension = f"{field}={value}" if field and isinstance(value, str) else ALL
    elif isinstance(result, TicketClassification):
        dimension = f"category={result.category}"
    elif isinstance(result, EmailSummary):
        dimension = f"urgency={result.urgency}"
    else:
        return None
    p = result.provenance
    return Observation(
        task=result.task,
        dimension=dimension,
        review=result.review,
        latency_ms=p.latency_ms,
        cost_usd=str(p.cost_usd),
        tokens_in=p.tokens_in,
        tokens_out=p.tokens_out,
        cache_hit=p.cache_hit,
        at=p.processed_at.timestamp(),
        result_id=result.result_id,
    )


def table_keys(obs: Observation) -> tuple[str, ...]:
    """The table keys ``obs`` counts under: its task's total and its dimension (the total once, when it has none)."""
    total = f"{obs.task}|{ALL}"
    return (total,) if obs.dimension == ALL else (total, f"{obs.task}|{obs.dimension}")


def split_key(key: str) -> tuple[str, str]:
    """``(task, dimension)`` of a table key."""
    task, _, dimension = key.partition("|")
    return task, dimension
