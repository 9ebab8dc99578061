"""The dashboard's numbers: one typed record per chart row, and the whole set as JSON.

Every figure covers the days from ``since`` (UTC) to now. Rates are fractions
(0..1), recomputed from summed counts (never averaged over days); a rate over
nothing is ``None``. Money is in US dollars, latencies in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "Automation",
    "AutomationDay",
    "ConfidenceBucket",
    "CostDay",
    "CostModel",
    "CrmLatency",
    "DlqTopic",
    "Figures",
    "Override",
    "TicketVolume",
    "Totals",
    "VolumeDay",
    "rate",
]


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 places, ``None`` when ``whole`` is 0."""
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class VolumeDay:
    day: date
    task: str
    results: int


@dataclass(frozen=True, slots=True)
class TicketVolume:
    category: str
    priority: str
    tickets: int


@dataclass(frozen=True, slots=True)
class Automation:
    """Review decisions of one task (``task``) or one day (``day``)."""

    results: int
    auto_applied: int
    suggested: int
    skipped: int
    automation_rate: float | None


@dataclass(frozen=True, slots=True)
class AutomationDay:
    day: date
    decisions: Automation


@dataclass(frozen=True, slots=True)
class CostDay:
    day: date
    task: str
    results: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class CostModel:
    task: str
    provider: str
    model: str
    results: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cost_usd_per_1000: float
    tokens_per_1000: float


@dataclass(frozen=True, slots=True)
class Override:
    task: str
    field: str
    prompt_id: str
    prompt_version: str
    written: int
    overridden: int
    override_rate: float | None


@dataclass(frozen=True, slots=True)
class ConfidenceBucket:
    field: str
    bucket: float
    review_decision: str
    results: int


@dataclass(frozen=True, slots=True)
class DlqTopic:
    topic: str
    records: int
    dead_lettered: int
    dlq_rate: float | None


@dataclass(frozen=True, slots=True)
class CrmLatency:
    task: str
    field: str
    writes: int
    p50_s: float
    p95_s: float
    max_s: float


@dataclass(frozen=True, slots=True)
class Totals:
    results: int
    automation: Automation
    cost_usd: float
    cost_usd_per_1000: float | None
    tokens: int
    written: int
    overridden: int
    override_rate: float | None
    records: int
    dead_lettered: int
    dlq_rate: float | None
    crm_writes: int
    crm_p95_s: float | None


@dataclass(frozen=True, slots=True)
class Figures:
    since: date
    generated_at: datetime
    totals: Totals
    volume_by_day: list[VolumeDay]
    tickets: list[TicketVolume]
    automation_by_task: dict[str, Automation]
    automation_by_day: list[AutomationDay]
    cost_by_day: list[CostDay]
    cost_by_model: list[CostModel]
    overrides: list[Override]
    confidence: list[ConfidenceBucket]
    dlq: list[DlqTopic]
    crm_latency: list[CrmLatency]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; dates and times in ISO 8601."""
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value
