"""The eval report: what a run measured, as a JSON document (``crmpilot.eval/1``).

Built from the per-item results by :func:`build_report`; saved with
:meth:`EvalReport.save` and read back with :func:`load_report` (for ``crmpilot
eval compare`` and the HTML report). Items carry labels, confidence, latency
and cost, never the ticket text, so a report can be shared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from crmpilot.evaluation.errors import ReportError
from crmpilot.evaluation.metrics import (
    Calibration,
    ClassificationMetrics,
    Distribution,
    Selective,
    classification_metrics,
    distribution,
    reliability,
    selective,
)

__all__ = ["ERROR_LABEL", "FORMAT", "Cost", "DatasetInfo", "EvalReport", "ItemResult", "RunInfo", "build_report", "load_report"]

FORMAT = "crmpilot.eval/1"
ERROR_LABEL = "(error)"
"""What a failed item counts as predicting: never a label, so it is always wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemResult(_Model):
    index: int
    gold: str
    predicted: str | None
    confidence: float | None
    latency_ms: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    """The error type when the run failed (``LLMTimeout``…)."""

    @property
    def correct(self) -> bool:
        return self.predicted == self.gold


class DatasetInfo(_Model):
    source: str
    sha256: str
    items: int
    skipped: int = 0
    labels: int


class RunInfo(_Model):
    task: str
    provider: str
    model: str
    model_version: str | None
    head: str | None
    """The trained head's id, ``zero-shot``, or ``None`` for a chat model."""
    prompt_id: str
    prompt_version: str
    prompt_hash: str
    concurrency: int


class Cost(_Model):
    total_usd: float
    per_item_usd: float
    tokens_in: int
    tokens_out: int


class EvalReport(_Model):
    format: str = FORMAT
    name: str
    created_at: str
    dataset: DatasetInfo
    run: RunInfo
    quality: ClassificationMetrics
    calibration: Calibration | None
    """Over the answered items (``None`` if none answered)."""
    selective: list[Selective]
    latency_ms: Distribution
    wall_s: float
    throughput_per_s: float
    cost: Cost
    errors: dict[str, int]
    items: list[ItemResult]

    def save(self, path: Path | str) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return p


def build_report(
    items: Sequence[ItemResult],
    *,
    name: str,
    dataset: DatasetInfo,
    run: RunInfo,
    wall_s: float,
    bins: int = 10,
    thresholds: Sequence[float] = (0.5, 0.8),
) -> EvalReport:
    """Every figure of a run from its items."""
    if not items:
        raise ValueError("no items to report on")
    gold = [i.gold for i in items]
    predicted = [i.predicted if i.error is None and i.predicted is not None else ERROR_LABEL for i in items]
    answered = [i for i in items if i.error is None and i.confidence is not None]
    conf = [float(i.confidence or 0.0) for i in answered]
    ok = [i.correct for i in answered]
    total_cost = sum(i.cost_usd for i in items)
    return EvalReport(
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=dataset,
        run=run,
        quality=classification_metrics(gold, predicted),
        calibration=reliability(conf, ok, bins=bins) if answered else None,
        selective=selective(conf, ok, thresholds) if answered else [],
        latency_ms=distribution([i.latency_ms for i in items]),
        wall_s=wall_s,
        throughput_per_s=len(items) / wall_s if wall_s > 0 else 0.0,
        cost=Cost(
            total_usd=total_cost,
            per_item_usd=total_cost / len(items),
            tokens_in=sum(i.tokens_in for i in items),
            tokens_out=sum(i.tokens_out for i in items),
        ),
        errors=dict(Counter(i.error for i in items if i.error is not None)),
        items=list(items),
    )


def load_report(path: Path | str) -> EvalReport:
    p = Path(path)
    try:
        return EvalReport.model_validate_json(p.read_bytes())
    except FileNotFoundError as exc:
        raise ReportError(f"no such report: {p}") from exc
    except OSError as exc:
        raise ReportError(f"cannot read {p}: {exc}") from exc
    except ValidationError as exc:
        raise ReportError(f"{p} is not a {FORMAT} report: {exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}") from exc
