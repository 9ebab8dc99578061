"""Quality figures of a classification run: accuracy, macro-F1, per-class P/R, confusions, calibration, latency.

Accuracy, precision/recall/F1 and log-loss come from scikit-learn. The
reliability table and the expected calibration error (ECE) are written here:
``sklearn.calibration.calibration_curve`` is for one binary class, drops empty
bins and returns no counts, and ECE needs the counts. ECE is the usual
equal-width-bin estimate: ``sum_b n_b/N * |accuracy_b - mean confidence_b|``,
bins ``[0, 0.1), …, [0.9, 1.0]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

__all__ = [
    "Calibration",
    "ClassMetrics",
    "ClassificationMetrics",
    "Confusion",
    "Distribution",
    "ReliabilityBin",
    "Selective",
    "classification_metrics",
    "distribution",
    "expected_calibration_error",
    "reliability",
    "selective",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClassMetrics(_Model):
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    """Items of this label in the gold data."""
    predicted: int
    """Items predicted as this label."""


class Confusion(_Model):
    gold: str
    predicted: str
    count: int


class ClassificationMetrics(_Model):
    n: int
    accuracy: float
    macro_f1: float
    """Unweighted mean F1 over the labels present in the gold data."""
    per_class: list[ClassMetrics]
    top_confusions: list[Confusion]


class ReliabilityBin(_Model):
    lo: float
    hi: float
    count: int
    accuracy: float | None
    """Share correct among the bin's items (``None`` for an empty bin)."""
    confidence: float | None
    """Mean confidence of the bin's items."""


class Calibration(_Model):
    bins: list[ReliabilityBin]
    ece: float
    """Expected calibration error: count-weighted mean |accuracy - confidence| over bins."""
    mce: float
    """Maximum calibration error: the worst non-empty bin's gap."""
    mean_confidence: float
    accuracy: float


class Selective(_Model):
    """What happens to the answers at or above a confidence threshold (e.g. the auto-apply one)."""

    threshold: float
    coverage: float
    """Share of items at or above the threshold."""
    accuracy: float | None
    """Accuracy among them (``None`` when there are none)."""
    n: int


class Distribution(_Model):
    n: int
    mean: float
    p50: float
    p95: float
    max: float


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str], *, top_confusions: int = 10
) -> ClassificationMetrics:
    """Figures over ``gold`` vs ``predicted`` (a failed item may be predicted as any non-label, e.g. ``"(error)"``)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no items")
    labels = sorted(set(gold))
    p, r, f, s = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    predicted_counts = Counter(predicted)
    per_class = [
        ClassMetrics(
            label=lab,
            precision=float(p[i]),
            recall=float(r[i]),
            f1=float(f[i]),
            support=int(s[i]),
            predicted=predicted_counts[lab],
        )
        for i, lab in enumerate(labels)
    ]
    pairs = Counter((g, q) for g, q in zip(gold, predicted, strict=True) if g != q)
    confusions = [
        Confusion(gold=g, predicted=q, count=c) for (g, q), c in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return ClassificationMetrics(
        n=len(gold),
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(np.mean(f)),
        per_class=per_class,
        top_confusions=confusions[:top_confusions],
    )


def _arrays(
    confidence: Sequence[float] | npt.ArrayLike, correct: Sequence[bool] | npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.shape != ok.shape:
        raise ValueError(f"{conf.shape[0]} confidences but {ok.shape[0]} outcomes")
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    return conf, ok


def reliability(
    confidence: Sequence[float] | npt.ArrayLike, correct: Sequence[bool] | npt.ArrayLike, *, bins: int = 10
) -> Calibration:
    """The reliability table in ``bins`` equal-width bins, with ECE and MCE."""
    if bins < 1:
        raise ValueError("bins must be >= 1")
    conf, ok = _arrays(confidence, correct)
    if not conf.size:
        raise ValueError("no items")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=False), 0, bins - 1)
    table, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count:
            acc, mean = float(ok[mask].mean()), float(conf[mask].mean())
            gap = abs(acc - mean)
            ece += count / conf.size * gap
            mce = max(mce, gap)
            table.append(
                ReliabilityBin(lo=float(edges[b]), hi=float(edges[b + 1]), count=count, accuracy=acc, confidence=mean)
            )
        else:
            table.append(
                ReliabilityBin(lo=float(edges[b]), hi=float(edges[b + 1]), count=0, accuracy=None, confidence=None)
            )
    return Calibration(bins=table, ece=ece, mce=mce, mean_confidence=float(conf.mean()), accuracy=float(ok.mean()))


def expected_calibration_error(
    confidence: Sequence[float] | npt.ArrayLike, correct: Sequence[bool] | npt.ArrayLike, *, bins: int = 10
) -> float:
    return reliability(confidence, correct, bins=bins).ece


def selective(
    confidence: Sequence[float] | npt.ArrayLike,
    correct: Sequence[bool] | npt.ArrayLike,
    thresholds: Sequence[float] = (0.5, 0.8),
) -> list[Selective]:
    """Coverage and accuracy at or above each threshold."""
    conf, ok = _arrays(confidence, correct)
    out = []
    for t in thresholds:
        mask = conf >= t
        n = int(mask.sum())
        out.append(
            Selective(
                threshold=float(t),
                coverage=n / conf.size if conf.size else 0.0,
                accuracy=float(ok[mask].mean()) if n else None,
                n=n,
            )
        )
    return out


def distribution(values: Sequence[float] | npt.ArrayLike) -> Distribution:
    """Mean, median, 95th percentile and max (e.g. of per-item latencies)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not v.size:
        return Distribution(n=0, mean=0.0, p50=0.0, p95=0.0, max=0.0)
    p50, p95 = np.percentile(v, [50, 95])
    return Distribution(n=int(v.size), mean=float(v.mean()), p50=float(p50), p95=float(p95), max=float(v.max()))
