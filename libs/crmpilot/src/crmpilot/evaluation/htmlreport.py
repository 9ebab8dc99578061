"""The eval report as one self-contained HTML file: figures, tables and inline SVG charts.

No scripts, fonts, stylesheets or images are fetched: the charts are SVG
elements written here (a reliability diagram, a confidence histogram split by
right/wrong, per-class F1 bars, a latency histogram), so the file opens
offline and can be attached to a ticket. Hand-written because a plotting
library (matplotlib, plotly) would add a heavy dependency, or a JavaScript
bundle, for four bar charts. Every text from the data is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from crmpilot.evaluation.metrics import Calibration, ClassMetrics
from crmpilot.evaluation.report import EvalReport, ItemResult

__all__ = ["render_html", "write_html"]

_OK, _BAD, _INK, _GRID, _ACCENT = "#2e7d32", "#c62828", "#222", "#ddd", "#1565c0"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px;margin-bottom:4px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:13px} .tiles{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:130px}
.tile b{display:block;font-size:22px} .tile span{color:#555;font-size:12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left} .charts{display:flex;flex-wrap:wrap;gap:24px}
figure{margin:0} figcaption{font-size:12px;color:#555;max-width:420px}
"""


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def _axes(
    x0: int,
    y0: int,
    w: int,
    h: int,
    *,
    xlabel: str,
    ylabel: str,
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[tuple[float, str]],
) -> str:
    """Axes for a plot area with its bottom-left corner at (x0, y0); ticks as (fraction, text)."""
    parts = []
    for f, text in yticks:
        y = y0 - f * h
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{escape(text)}</text>')
    for f, text in xticks:
        x = x0 + f * w
        parts.append(f'<text x="{x:.1f}" y="{y0 + 14}" text-anchor="middle" {_FONT}>{escape(text)}</text>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + w}" y2="{y0}" stroke="{_INK}"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - h}" stroke="{_INK}"/>')
    parts.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + 30}" text-anchor="middle" {_FONT}>{escape(xlabel)}</text>')
    parts.append(
        f'<text x="12" y="{y0 - h / 2:.1f}" text-anchor="middle" transform="rotate(-90 12 {y0 - h / 2:.1f})" '
        f"{_FONT}>{escape(ylabel)}</text>"
    )
    return "".join(parts)


_UNIT_TICKS = [(f, f"{f:.1f}") for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]


def _count_axis(largest: int) -> tuple[int, list[tuple[float, str]]]:
    """The axis top (a multiple of a whole step, at least ``largest``) and its integer ticks."""
    step = max(1, -(-largest // 4))
    top = step * max(1, -(-largest // step))
    return top, [(k * step / top, str(k * step)) for k in range(top // step + 1)]


def reliability_svg(calibration: Calibration) -> str:
    """Accuracy per confidence bin (bars) against perfect calibration (diagonal); mean confidence as a tick."""
    x0, y0, w, h = 50, 290, 300, 260
    parts = [_axes(x0, y0, w, h, xlabel="confidence", ylabel="accuracy", xticks=_UNIT_TICKS, yticks=_UNIT_TICKS)]
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + w}" y2="{y0 - h}" stroke="#999" stroke-dasharray="4 3"/>')
    for b in calibration.bins:
        if not b.count or b.accuracy is None or b.confidence is None:
            continue
        bx, bw = x0 + b.lo * w + 1, (b.hi - b.lo) * w - 2
        bh = b.accuracy * h
        colour = _OK if b.accuracy >= b.confidence else _BAD
        tip = f"{b.lo:.1f}–{b.hi:.1f}: {b.count} items, accuracy {b.accuracy:.3f}, mean confidence {b.confidence:.3f}"
        parts.append(
            f'<rect x="{bx:.1f}" y="{y0 - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{colour}" '
            f'fill-opacity="0.55"><title>{escape(tip)}</title></rect>'
        )
        cy = y0 - b.confidence * h
        parts.append(
            f'<line x1="{bx:.1f}" y1="{cy:.1f}" x2="{bx + bw:.1f}" y2="{cy:.1f}" stroke="{_INK}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{bx + bw / 2:.1f}" y="{y0 - bh - 3:.1f}" text-anchor="middle" {_FONT}>{b.count}</text>')
    return _svg(370, 330, "".join(parts), f"Reliability diagram, ECE {calibration.ece:.4f}")


def confidence_svg(items: Sequence[ItemResult], bins: int = 20) -> str:
    """How many answers at each confidence, right (green) stacked under wrong (red)."""
    answered = [i for i in items if i.confidence is not None and i.error is None]
    x0, y0, w, h = 50, 290, 300, 260
    edges = np.linspace(0, 1, bins + 1)
    conf = np.array([i.confidence for i in answered], dtype=float)
    ok = np.array([i.correct for i in answered], dtype=bool)
    right, _ = np.histogram(conf[ok], edges)
    wrong, _ = np.histogram(conf[~ok], edges)
    top, yticks = _count_axis(int((right + wrong).max()) if len(answered) else 1)
    parts = [_axes(x0, y0, w, h, xlabel="confidence", ylabel="answers", xticks=_UNIT_TICKS, yticks=yticks)]
    bw = w / bins
    for k in range(bins):
        hr, hw = right[k] / top * h, wrong[k] / top * h
        x = x0 + k * bw + 1
        tip = f"{edges[k]:.2f}–{edges[k + 1]:.2f}: {right[k]} right, {wrong[k]} wrong"
        parts.append(
            f'<rect x="{x:.1f}" y="{y0 - hr:.1f}" width="{bw - 2:.1f}" height="{hr:.1f}" '
            f'fill="{_OK}"><title>{escape(tip)}</title></rect>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y0 - hr - hw:.1f}" width="{bw - 2:.1f}" height="{hw:.1f}" '
            f'fill="{_BAD}"><title>{escape(tip)}</title></rect>'
        )
    return _svg(370, 330, "".join(parts), "Confidence histogram: right and wrong answers")


def f1_svg(per_class: Sequence[ClassMetrics]) -> str:
    """One bar per class, worst F1 first."""
    rows = sorted(per_class, key=lambda c: (c.f1, c.label))
    label_w, bar_w, row_h = 260, 300, 14
    height = 30 + row_h * len(rows)
    parts = []
    for f, text in _UNIT_TICKS:
        x = label_w + f * bar_w
        parts.append(f'<line x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{height - 8}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{x:.1f}" y="12" text-anchor="middle" {_FONT}>{text}</text>')
    for r, c in enumerate(rows):
        y = 20 + r * row_h
        tip = f"{c.label}: F1 {c.f1:.3f}, precision {c.precision:.3f}, recall {c.recall:.3f}, support {c.support}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 10}" text-anchor="end" {_FONT}>{escape(c.label[:40])}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 1}" width="{c.f1 * bar_w:.1f}" height="{row_h - 3}" '
            f'fill="{_ACCENT}"><title>{escape(tip)}</title></rect>'
        )
    return _svg(label_w + bar_w + 20, height, "".join(parts), "F1 per class")


def latency_svg(items: Sequence[ItemResult], bins: int = 30) -> str:
    """Per-item latency histogram (up to the 99th percentile; the rest in the last bar)."""
    lat = np.array([i.latency_ms for i in items], dtype=float)
    hi = float(np.percentile(lat, 99)) if lat.size else 1.0
    hi = hi if hi > 0 else 1.0
    edges = np.linspace(0, hi, bins + 1)
    counts, _ = np.histogram(np.clip(lat, 0, hi), edges)
    top, yticks = _count_axis(int(counts.max()) if lat.size else 1)
    x0, y0, w, h = 50, 290, 300, 260
    xticks = [(f, f"{f * hi:.0f}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    parts = [_axes(x0, y0, w, h, xlabel="latency (ms)", ylabel="items", xticks=xticks, yticks=yticks)]
    if lat.size:
        for q in (50, 95):
            x = x0 + min(float(np.percentile(lat, q)), hi) / hi * w
            parts.append(
                f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 - h}" stroke="{_INK}" stroke-dasharray="3 3"/>'
            )
            parts.append(f'<text x="{x + 3:.1f}" y="{y0 - h + 10 + (q == 95) * 12}" {_FONT}>p{q}</text>')
    bw = w / bins
    for k in range(bins):
        bh = counts[k] / top * h
        tip = f"{edges[k]:.0f}–{edges[k + 1]:.0f} ms: {counts[k]} items"
        parts.append(
            f'<rect x="{x0 + k * bw + 0.5:.1f}" y="{y0 - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
            f'fill="{_ACCENT}"><title>{escape(tip)}</title></rect>'
        )
    return _svg(400, 330, "".join(parts), "Latency per item")


def _tile(value: str, label: str) -> str:
    return f'<div class="tile"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _opt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def render_html(report: EvalReport) -> str:
    q, run, lat = report.quality, report.run, report.latency_ms
    tiles = [
        _tile(f"{q.accuracy:.3f}", "accuracy"),
        _tile(f"{q.macro_f1:.3f}", "macro-F1"),
        _tile(f"{report.calibration.ece:.3f}" if report.calibration else "—", "expected calibration error"),
        _tile(f"{lat.p50:.0f} / {lat.p95:.0f} ms", "latency p50 / p95"),
        _tile(f"{report.throughput_per_s:.1f}/s", f"throughput at concurrency {run.concurrency}"),
        _tile(f"${report.cost.per_item_usd:.6f}", "cost per item"),
    ]
    tiles += [
        _tile(_opt(s.accuracy), f"accuracy at conf ≥ {s.threshold:g} (coverage {s.coverage:.2f})")
        for s in report.selective
    ]
    oos = report.out_of_scope
    if oos is not None:
        tiles += [
            _tile(f"{oos.auto_applied:.3f}", f"out of scope auto-applied (≥ {oos.auto_threshold:g}, {oos.n} items)"),
            _tile(f"{oos.at_suggest:.3f}", f"out of scope at suggest (conf ≥ {oos.suggest_threshold:g})"),
            _tile(f"{oos.flagged:.3f}", "out of scope flagged"),
            _tile(f"{oos.in_scope_flagged:.3f}", f"in scope flagged ({oos.in_scope_n} items)"),
        ]
    scored = [i for i in report.items if i.in_scope]
    meta = (
        f"{escape(run.task)} · provider {escape(run.provider)} · model {escape(run.model)}"
        + (f" · head {escape(run.head)}" if run.head else "")
        + f" · prompt {escape(run.prompt_id)} {escape(run.prompt_version)} ({escape(run.prompt_hash)})"
        + f"<br>data {escape(report.dataset.source)} · {report.dataset.items} items · {report.dataset.labels} labels"
        + f" · sha256 {escape(report.dataset.sha256[:16])}… · created {escape(report.created_at)}"
        + (f"<br>errors: {escape(', '.join(f'{k}: {v}' for k, v in report.errors.items()))}" if report.errors else "")
    )
    charts = []
    if report.calibration is not None:
        charts.append(
            f"<figure>{reliability_svg(report.calibration)}<figcaption>Reliability: bar = accuracy of the answers in a "
            "confidence bin, black tick = their mean confidence, dashed = perfect calibration. Green bars: "
            "under-confident, "
            "red: over-confident. Numbers: answers per bin.</figcaption></figure>"
        )
        charts.append(
            f"<figure>{confidence_svg(scored)}<figcaption>Answers by confidence: right (green), wrong (red)"
            + (" (in-scope items)" if oos is not None else "")
            + ".</figcaption></figure>"
        )
    charts.append(
        f"<figure>{latency_svg(report.items)}<figcaption>Latency per item (client call, retries "
        "included).</figcaption></figure>"
    )
    rel_rows = ""
    if report.calibration is not None:
        rel_rows = "".join(
            f"<tr><td>{b.lo:.1f}–{b.hi:.1f}</td><td>{b.count}</td><td>{_opt(b.confidence)}</td><td>{_opt(b.accuracy)}</td></tr>"
            for b in report.calibration.bins
        )
    confusions = "".join(
        f"<tr><td>{escape(c.gold)}</td><td>{escape(c.predicted)}</td><td>{c.count}</td></tr>" for c in q.top_confusions
    )
    classes = "".join(
        f"<tr><td>{escape(c.label)}</td><td>{c.precision:.3f}</td><td>{c.recall:.3f}</td><td>{c.f1:.3f}</td><td>{c.support}</td><td>{c.predicted}</td></tr>"
        for c in sorted(q.per_class, key=lambda c: (c.f1, c.label))
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(report.name)} · crmpilot eval</title>
<style>{_CSS}</style></head><body>
<h1>{escape(report.name)}</h1><p class="meta">{meta}</p>
<div class="tiles">{"".join(tiles)}</div>
{_oos_section(report)}<h2>Calibration and latency</h2><div class="charts">{"".join(charts)}</div>
<table><tr><th>confidence</th><th>items</th><th>mean confidence</th><th>accuracy</th></tr>{rel_rows}</table>
<h2>Top confusions</h2>
<table><tr><th>gold</th><th>predicted</th><th>count</th></tr>
{confusions or '<tr><td colspan="3">none</td></tr>'}</table>
<h2>Per class</h2>
<div class="charts"><figure>{f1_svg(q.per_class)}</figure>
<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>{classes}</table></div>
</body></html>
"""


def _oos_section(report: EvalReport) -> str:
    oos = report.out_of_scope
    if oos is None:
        return ""
    return (
        "<h2>Out of scope</h2>"
        f'<p class="meta">{oos.n} items whose gold label the model does not know '
        f"({escape(', '.join(oos.labels[:20]))}"
        f"{' …' if len(oos.labels) > 20 else ''}); every other figure is over the {oos.in_scope_n} in-scope items.</p>"
        "<table><tr><th>out-of-scope items</th><th>share</th></tr>"
        f"<tr><td>auto-applied (confidence ≥ {oos.auto_threshold:g})</td><td>{oos.auto_applied:.3f}</td></tr>"
        f"<tr><td>at least suggested (confidence ≥ {oos.suggest_threshold:g})</td><td>{oos.at_suggest:.3f}</td></tr>"
        f"<tr><td>flagged out of scope by the model</td><td>{oos.flagged:.3f}</td></tr>"
        f"<tr><td>in-scope items flagged out of scope</td><td>{oos.in_scope_flagged:.3f}</td></tr></table>"
    )


def write_html(report: EvalReport, path: Path | str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(report), encoding="utf-8")
    return p
