"""Inline SVG charts: stacked columns and labelled horizontal bars, as strings.

Written here rather than taken from a charting library: the dashboard must be
one HTML file that opens offline, and the libraries that emit static SVG
(matplotlib, plotly's image export) are heavy, not in the environment, or need
a browser engine. Two chart shapes cover every figure; each mark carries a
``<title>`` (the exact value, shown on hover) and the class ``mark``. All
text is escaped: labels come from data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_list", "column_chart", "legend"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values, one per label of the chart."""

    name: str
    values: Sequence[float]
    color: str


def _axis(top: float) -> tuple[float, float]:
    """A round tick step (1, 2 or 5 × 10^k; whole from 1 up) and the axis maximum, at most 4 steps, covering ``top``."""
    if top <= 0:
        return 1.0, 4.0
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    if top >= 1:
        step = max(step, 1.0)
    return step, step * math.ceil(top / step - 1e-9)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def legend(series: Sequence[Series]) -> str:
    """An HTML legend for a chart's series."""
    items = "".join(f'<span class="key"><i style="background:{s.color}"></i>{escape(s.name)}</span>' for s in series)
    return f'<div class="legend">{items}</div>'


def column_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Callable[[float], str],
    max_value: float | None = None,
    width: int = 960,
    height: int = 240,
) -> str:
    """Columns per label, the series stacked bottom-up; the y axis from 0 to a round maximum."""
    left, right, top, bottom = 56, 8, 8, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    step, y_max = _axis(max(totals, default=0) if max_value is None else max_value)
    ticks = round(y_max / step)
    slot = plot_w / max(len(labels), 1)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" {_FONT}>'
    ]
    for i in range(ticks + 1):
        value = step * i
        y = top + plot_h - plot_h * i / ticks
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" fill="#6b7280">{escape(fmt(value))}</text>'
        )
    every = math.ceil(len(labels) / max(1, plot_w // 64))
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        base: float = top + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * min(value, y_max) / y_max
            base -= h
            tip = f"{label} · {s.name}: {fmt(value)}"
            parts.append(
                f'<rect class="mark" x="{_num(x)}" y="{_num(base)}" width="{_num(bar_w)}" height="{_num(h)}" '
                f'fill="{s.color}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            cx = left + slot * i + slot / 2
            parts.append(
                f'<text x="{_num(cx)}" y="{height - bottom + 16}" text-anchor="middle" '
                f'fill="#374151">{escape(label)}</text>'
            )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9ca3af"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_list(
    rows: Sequence[tuple[str, float, str]],
    *,
    title: str,
    color: str,
    max_value: float | None = None,
    width: int = 960,
) -> str:
    """One horizontal bar per ``(label, value, annotation)``; the annotation is printed after the bar."""
    row_h, note_w = 24, 220
    label_width = min(420, max(80, 7 * max((len(label) for label, _, _ in rows), default=0) + 16))
    height = row_h * max(len(rows), 1) + 8
    top_value = max_value if max_value is not None else max((v for _, v, _ in rows), default=0) or 1.0
    plot_w = width - label_width - note_w
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" {_FONT}>'
    ]
    for i, (label, value, note) in enumerate(rows):
        y = 4 + row_h * i
        w = plot_w * min(max(value, 0.0), top_value) / top_value
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end" fill="#374151">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{plot_w}" height="{row_h - 8}" fill="#f3f4f6"/>'
            f'<rect class="mark" x="{label_width}" y="{y + 3}" width="{_num(max(w, 1.0))}" height="{row_h - 8}" '
            f'fill="{color}"><title>{escape(f"{label}: {note}")}</title></rect>'
            f'<text x="{label_width + plot_w + 8}" y="{y + 15}" fill="#111827">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
