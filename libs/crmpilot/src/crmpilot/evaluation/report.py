"""The eval report: what a run measured, as a JSON document (``crmpilot.eval/1``).

Built from the per-item results by :func:`build_report`; saved with
:meth:`EvalReport.save` and read back with :func:`load_report` (for ``crmpilot
eval compare`` and the HTML report). Items carry labels, confidence, latency
and cost, never the ticket text, so a report can be shared.

**Out of scope.** Items whose gold label is one the model does not know
(marked :data:`OOS_LABEL`, or a label given to ``crmpilot eval run
--oos-label``) are *out-of-scope* items: any category is wrong for them, and
what matters is whether it would be written. When a run has some, the
quality, calibration and selective figures are those of the in-scope items,
and :class:`OutOfScope` counts the out-of-scope ones whose confidence reaches
the auto-apply and the suggest thresholds (written as fact / at least
suggested), and the share flagged out of scope by the model (the local
provider's gate); ``in_scope_flagged`` is what the gate costs on in-scope items.
The calibration figures leave flagged answers out (their confidence 0 is a veto,
not a probability); the selective ones count them as not covered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
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

__all__ = [
    "ERROR_LABEL",
    "FORMAT",
    "OOS_LABEL",
    "Cost",
    "DatasetInfo",
    "EvalReport",
    "ItemResult",
    "OutOfScope",
    "RunInfo",
    "build_report",
    "load_report",
]

FORMAT = "crmpilot.eval/1"
ERROR_LABEL = "(error)"
"""What a failed item counts as predicting: never a label, so it is always wrong."""
OOS_LABEL = "__unknown__"
"""A gold label that marks an item as out of scope: none of the model's categories fits it."""


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
    in_scope: bool = True
    """``False``: the gold label is one the model does not know (an out-of-scope item)."""
    flagged: bool = False
    """The answer said the ticket is out of scope (the local provider's gate fired)."""

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


class OutOfScope(_Model):
    """What became of the out-of-scope items (and what the gate cost the in-scope ones)."""

    n: int
    labels: list[str]
    """Their gold labels."""
    auto_threshold: float
    suggest_threshold: float
    auto_applied: float
    """Share with confidence ≥ the auto-apply threshold: a wrong category written as fact."""
    at_suggest: float
    """Share with confidence ≥ the suggest threshold: written at least as a suggestion."""
    flagged: float
    """Share the model flagged out of scope."""
    in_scope_n: int
    in_scope_flagged: float
    """Share of the in-scope items flagged out of scope (their category not applied)."""


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
    """Over the answered items the model did not flag out of scope (``None`` if none): a flagged answer's
    confidence 0 is a veto, not a probability; ``selective`` counts flagged items as not covered."""
    selective: list[Selective]
    latency_ms: Distribution
    wall_s: float
    throughput_per_s: float
    cost: Cost
    errors: dict[str, int]
    items: list[ItemResult]
    out_of_scope: OutOfScope | None = None
    """Set when some items are out of scope; quality, calibration and selective are then the in-scope items'."""

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
    """Every figure of a run from its items (quality, calibration and selective over the in-scope ones)."""
    if not items:
        raise ValueError("no items to report on")
    scored = [i for i in items if i.in_scope]
    outside = [i for i in items if not i.in_scope]
    if not scored:
        raise ValueError("no in-scope items to report on (every gold label is out of scope)")
    gold = [i.gold for i in scored]
    predicted = [i.predicted if i.error is None and i.predicted is not None else ERROR_LABEL for i in scored]
    answered = [i for i in scored if i.error is None and i.confidence is not None]
    conf = [float(i.confidence or 0.0) for i in answered]
    ok = [i.correct for i in answered]
    kept = [i for i in answered if not i.flagged]
    total_cost = sum(i.cost_usd for i in items)
    return EvalReport(
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=dataset,
        run=run,
        quality=classification_metrics(gold, predicted),
        calibration=(
            reliability([float(i.confidence or 0.0) for i in kept], [i.correct for i in kept], bins=bins)
            if kept
            else None
        ),
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
        out_of_scope=_out_of_scope(outside, scored, thresholds) if outside else None,
    )


def _out_of_scope(
    outside: Sequence[ItemResult], scored: Sequence[ItemResult], thresholds: Sequence[float]
) -> OutOfScope:
    """A failed item counts as not written (no confidence)."""
    low, high = (min(thresholds), max(thresholds)) if thresholds else (0.5, 0.8)

    def share(rows: Sequence[ItemResult], ok: Callable[[ItemResult], bool]) -> float:
        return sum(1 for i in rows if ok(i)) / len(rows) if rows else 0.0

    def conf(i: ItemResult) -> float:
        return -1.0 if i.error is not None or i.confidence is None else float(i.confidence)

    return OutOfScope(
        n=len(outside),
        labels=sorted({i.gold for i in outside}),
        auto_threshold=high,
        suggest_threshold=low,
        auto_applied=share(outside, lambda i: conf(i) >= high),
        at_suggest=share(outside, lambda i: conf(i) >= low),
        flagged=share(outside, lambda i: i.flagged),
        in_scope_n=len(scored),
        in_scope_flagged=share(scored, lambda i: i.flagged),
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
        raise ReportError(
            f"{p} is not a {FORMAT} report: {exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
        ) from exc
