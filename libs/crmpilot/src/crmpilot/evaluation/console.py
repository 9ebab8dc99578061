"""Eval reports for the terminal: the headline figures, per-class table, confusions, calibration, comparisons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table

from crmpilot.evaluation.report import EvalReport

__all__ = ["CompareRow", "compare_rows", "compare_table", "summary"]


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def summary(report: EvalReport, *, classes: int = 15) -> RenderableType:
    """Headline, worst classes, top confusions and the reliability table."""
    q, run = report.quality, report.run
    head = Table(title=f"{report.name}: {run.task} on {report.dataset.source} ({q.n} items)", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    rows = [
        ("provider", f"{run.provider} {run.model}" + (f" head={run.head}" if run.head else "")),
        ("prompt", f"{run.prompt_id} {run.prompt_version} ({run.prompt_hash})"),
        ("accuracy", f"{q.accuracy:.4f}"),
        ("macro-F1", f"{q.macro_f1:.4f}"),
    ]
    if report.calibration is not None:
        rows += [
            ("ECE", f"{report.calibration.ece:.4f} (mean confidence {report.calibration.mean_confidence:.3f})"),
        ]
    for s in report.selective:
        rows.append(
            (f"confidence ≥ {s.threshold:g}", f"coverage {s.coverage:.3f}, accuracy {_pct(s.accuracy)} (n={s.n})")
        )
    if (oos := report.out_of_scope) is not None:
        shown = ", ".join(oos.labels[:5]) + (f" … ({len(oos.labels)} labels)" if len(oos.labels) > 5 else "")
        rows += [
            ("in scope", f"{oos.in_scope_n} items (figures above); flagged out of scope {oos.in_scope_flagged:.3f}"),
            ("out of scope", f"{oos.n} items ({shown})"),
            (f"  auto-applied (≥ {oos.auto_threshold:g})", f"{oos.auto_applied:.3f}"),
            (f"  at suggest (≥ {oos.suggest_threshold:g})", f"{oos.at_suggest:.3f}"),
            ("  flagged out of scope", f"{oos.flagged:.3f}"),
        ]
    lat = report.latency_ms
    rows += [
        ("latency / item", f"p50 {lat.p50:.1f} ms, p95 {lat.p95:.1f} ms, mean {lat.mean:.1f} ms"),
        (
            "throughput",
            f"{report.throughput_per_s:.1f} items/s at concurrency {run.concurrency} ({report.wall_s:.1f} s)",
        ),
        (
            "cost",
            f"${report.cost.total_usd:.6f} total, ${report.cost.per_item_usd:.8f} / item, tokens "
            f"{report.cost.tokens_in} in / {report.cost.tokens_out} out",
        ),
        ("errors", ", ".join(f"{k}: {v}" for k, v in report.errors.items()) or "none"),
    ]
    for k, v in rows:
        head.add_row(k, v)

    per = Table(title=f"per class (worst {min(classes, len(q.per_class))} by F1 of {len(q.per_class)})")
    for col in ("label", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="left" if col == "label" else "right")
    for c in sorted(q.per_class, key=lambda c: (c.f1, c.label))[:classes]:
        per.add_row(c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support))

    conf = Table(title="top confusions (gold → predicted)")
    for col in ("gold", "predicted", "count"):
        conf.add_column(col, justify="right" if col == "count" else "left")
    for pair in q.top_confusions:
        conf.add_row(pair.gold, pair.predicted, str(pair.count))

    parts: list[RenderableType] = [head, per, conf]
    if report.calibration is not None:
        rel = Table(title=f"reliability ({len(report.calibration.bins)} bins)")
        for col in ("confidence", "items", "mean confidence", "accuracy", "gap"):
            rel.add_column(col, justify="right")
        for b in report.calibration.bins:
            gap = "" if b.accuracy is None or b.confidence is None else f"{b.accuracy - b.confidence:+.3f}"
            rel.add_row(f"{b.lo:.1f}–{b.hi:.1f}", str(b.count), _pct(b.confidence), _pct(b.accuracy), gap)
        parts.append(rel)
    return Group(*parts)


@dataclass(frozen=True, slots=True)
class CompareRow:
    metric: str
    a: float | None
    b: float | None
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


def _accuracy_at(threshold: float) -> Callable[[EvalReport], float | None]:
    def get(r: EvalReport) -> float | None:
        return next((s.accuracy for s in r.selective if abs(s.threshold - threshold) < 1e-9), None)

    return get


def _coverage(threshold: float) -> Callable[[EvalReport], float | None]:
    def get(r: EvalReport) -> float | None:
        return next((s.coverage for s in r.selective if abs(s.threshold - threshold) < 1e-9), None)

    return get


def compare_rows(a: EvalReport, b: EvalReport) -> list[CompareRow]:
    """The figures of two runs, side by side (``delta = b - a``)."""
    metrics: list[tuple[str, Callable[[EvalReport], float | None], bool]] = [
        ("accuracy", lambda r: r.quality.accuracy, True),
        ("macro-F1", lambda r: r.quality.macro_f1, True),
        ("ECE", lambda r: r.calibration.ece if r.calibration else None, False),
        ("mean confidence", lambda r: r.calibration.mean_confidence if r.calibration else None, True),
    ]
    thresholds = sorted({s.threshold for s in (*a.selective, *b.selective)})
    for t in thresholds:
        metrics.append((f"accuracy at confidence ≥ {t:g}", _accuracy_at(t), True))
        metrics.append((f"coverage at confidence ≥ {t:g}", _coverage(t), True))
    if a.out_of_scope is not None or b.out_of_scope is not None:
        metrics += [
            ("out of scope: auto-applied", lambda r: r.out_of_scope.auto_applied if r.out_of_scope else None, False),
            ("out of scope: at suggest", lambda r: r.out_of_scope.at_suggest if r.out_of_scope else None, False),
            ("out of scope: flagged", lambda r: r.out_of_scope.flagged if r.out_of_scope else None, True),
            ("in scope: flagged", lambda r: r.out_of_scope.in_scope_flagged if r.out_of_scope else None, False),
        ]
    metrics += [
        ("latency p50 ms", lambda r: r.latency_ms.p50, False),
        ("latency p95 ms", lambda r: r.latency_ms.p95, False),
        ("throughput items/s", lambda r: r.throughput_per_s, True),
        ("cost per item USD", lambda r: r.cost.per_item_usd, False),
        ("errors", lambda r: float(sum(r.errors.values())), False),
    ]
    return [CompareRow(name, get(a), get(b), better) for name, get, better in metrics]


def _class_deltas(a: EvalReport, b: EvalReport) -> Iterable[tuple[str, float, float]]:
    fa = {c.label: c.f1 for c in a.quality.per_class}
    fb = {c.label: c.f1 for c in b.quality.per_class}
    for label in sorted(set(fa) & set(fb)):
        yield label, fa[label], fb[label]


def compare_table(a: EvalReport, b: EvalReport, *, classes: int = 10) -> RenderableType:
    def describe(r: EvalReport) -> str:
        return f"{r.name}\n{r.run.provider} {r.run.head or r.run.model}\n{r.run.prompt_version}"

    table = Table(title="eval compare (delta = B − A)")
    table.add_column("metric")
    table.add_column(f"A: {describe(a)}", justify="right")
    table.add_column(f"B: {describe(b)}", justify="right")
    table.add_column("delta", justify="right")
    for row in compare_rows(a, b):
        delta = row.delta
        if delta is None:
            shown = "—"
        else:
            good = (delta > 0) == row.higher_is_better
            style = "" if abs(delta) < 1e-12 else ("green" if good else "red")
            shown = f"[{style}]{delta:+.4f}[/]" if style else f"{delta:+.4f}"
        table.add_row(row.metric, _fmt(row.a), _fmt(row.b), shown)
    parts: list[RenderableType] = [table]
    if a.dataset.sha256 != b.dataset.sha256:
        parts.append(f"[yellow]note: the runs used different data ({a.dataset.source} vs {b.dataset.source})[/]")
    moved = sorted(_class_deltas(a, b), key=lambda t: -abs(t[2] - t[1]))[:classes]
    if moved:
        per = Table(title=f"largest per-class F1 changes (top {len(moved)})")
        for col in ("label", "F1 A", "F1 B", "delta"):
            per.add_column(col, justify="left" if col == "label" else "right")
        for label, fa, fb in moved:
            per.add_row(label, f"{fa:.3f}", f"{fb:.3f}", f"{fb - fa:+.3f}")
        parts.append(per)
    return Group(*parts)


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
