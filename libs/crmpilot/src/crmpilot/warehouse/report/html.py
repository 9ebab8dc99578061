"""Render :class:`Figures` as one self-contained HTML page: inline CSS and SVG, no scripts, no links.

Sections (each a ``<section id=…>``): ``volume``, ``automation``, ``cost``,
``overrides``, ``confidence``, ``dlq``, ``latency``; each has its chart(s) and
a table of the exact numbers, or says that the period has no data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape

from .figures import Automation, Figures
from .svg import PALETTE, Series, bar_list, column_chart, legend

__all__ = ["render_html"]

DECISIONS = (("auto_applied", "auto-applied", "#59a14f"), ("suggested", "suggested for review", "#f28e2b"),
             ("skipped", "skipped", "#bab0ac"))  # fmt: skip
PRIORITIES = ("Urgent", "High", "Medium", "Low")
_PRIORITY_COLORS = ("#e15759", "#f28e2b", "#edc948", "#76b7b2")

_NUMBER = re.compile(r"^(?:[-–$]|\d)")
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#111827;background:#f9fafb;margin:0}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 4px}h3{font-size:14px;margin:16px 0 4px;color:#374151}
.meta,.note{color:#6b7280;margin:0 0 12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:12px;margin:16px 0 24px}
.tile{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}
.tile b{display:block;font-size:20px}.tile span{color:#6b7280;font-size:12px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 20px;margin:0 0 20px}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;margin:4px 0}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;margin-top:8px;font-size:12.5px}
th,td{padding:3px 10px;border-bottom:1px solid #f3f4f6;text-align:left}
.n{text-align:right}th{color:#374151;font-weight:600}
.empty{color:#6b7280;font-style:italic}svg.chart{max-width:100%;height:auto;display:block}
"""


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.4f}"


def count(value: int) -> str:
    return f"{value:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; columns whose cells are all numbers (or –) are right-aligned."""
    rows = [list(row) for row in rows]
    numeric = {i for i in range(len(header)) if all(_NUMBER.match(row[i]) for row in rows)}

    def cell(tag: str, i: int, text: str) -> str:
        return f'<{tag} class="n">{escape(text)}</{tag}>' if i in numeric else f"<{tag}>{escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(id_: str, title: str, note: str, body: str | None, empty: str) -> str:
    content = body if body else f'<p class="empty">{escape(empty)}</p>'
    return f'<section id="{id_}"><h2>{escape(title)}</h2><p class="note">{escape(note)}</p>{content}</section>'


def _decision_series(decisions: Sequence[Automation]) -> list[Series]:
    return [Series(name, [getattr(a, attr) for a in decisions], color) for attr, name, color in DECISIONS]


def _tiles(f: Figures) -> str:
    t = f.totals
    tiles = [
        (count(t.results), "AI results"),
        (pct(t.automation.automation_rate), "automation rate (auto-applied)"),
        (usd(t.cost_usd), f"cost · {usd(t.cost_usd_per_1000)} per 1,000 results"),
        (count(t.tokens), "tokens in + out"),
        (pct(t.override_rate), f"override rate · {t.overridden} of {t.written} CRM values"),
        (pct(t.dlq_rate), f"DLQ rate · {t.dead_lettered} of {count(t.records)} records"),
        (duration(t.crm_p95_s), f"event → CRM p95 · {t.crm_writes} writes"),
    ]
    return (
        '<div class="tiles">'
        + "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in tiles)
        + "</div>"
    )


def _volume(f: Figures) -> str | None:
    if not f.volume_by_day and not f.tickets:
        return None
    parts = []
    days = sorted({v.day for v in f.volume_by_day})
    tasks = sorted({v.task for v in f.volume_by_day})
    per = {(v.day, v.task): v.results for v in f.volume_by_day}
    series = [
        Series(task, [per.get((d, task), 0) for d in days], PALETTE[i % len(PALETTE)]) for i, task in enumerate(tasks)
    ]
    if days:
        parts.append("<h3>Results per day, by task</h3>" + legend(series))
        parts.append(
            column_chart(
                [d.isoformat() for d in days], series, title="results per day by task", fmt=lambda v: f"{v:,.0f}"
            )
        )
    if f.tickets:
        categories = list(dict.fromkeys(t.category for t in f.tickets))
        by = {(t.category, t.priority): t.tickets for t in f.tickets}
        priorities = [p for p in PRIORITIES if any(t.priority == p for t in f.tickets)]
        priorities += sorted({t.priority for t in f.tickets} - set(priorities))
        colors = dict(zip(PRIORITIES, _PRIORITY_COLORS, strict=True))
        series = [Series(p, [by.get((c, p), 0) for c in categories], colors.get(p, PALETTE[-1])) for p in priorities]
        parts.append("<h3>Tickets by category and priority</h3>" + legend(series))
        parts.append(
            column_chart(categories, series, title="tickets by category and priority", fmt=lambda v: f"{v:,.0f}")
        )
        rows = [
            [c, *(count(by.get((c, p), 0)) for p in priorities), count(sum(by.get((c, p), 0) for p in priorities))]
            for c in categories
        ]
        parts.append(_table(["category", *priorities, "total"], rows))
    return "".join(parts)


def _automation(f: Figures) -> str | None:
    if not f.automation_by_task:
        return None
    tasks = list(f.automation_by_task)
    per_task = [f.automation_by_task[t] for t in tasks]
    series = _decision_series(per_task)
    parts = [legend(series), "<h3>By task</h3>",
             column_chart(tasks, series, title="review decisions by task", fmt=lambda v: f"{v:,.0f}")]  # fmt: skip
    if f.automation_by_day:
        days = [a.day.isoformat() for a in f.automation_by_day]
        parts.append("<h3>By day (all tasks)</h3>")
        parts.append(column_chart(days, _decision_series([a.decisions for a in f.automation_by_day]),
                                  title="review decisions by day", fmt=lambda v: f"{v:,.0f}"))  # fmt: skip
    rows = [[t, count(a.results), count(a.auto_applied), count(a.suggested), count(a.skipped), pct(a.automation_rate)]
            for t, a in zip(tasks, per_task, strict=True)]  # fmt: skip
    parts.append(_table(["task", "results", "auto-applied", "suggested", "skipped", "automation rate"], rows))
    return "".join(parts)


def _cost(f: Figures) -> str | None:
    if not f.cost_by_model:
        return None
    days = sorted({c.day for c in f.cost_by_day})
    tasks = sorted({c.task for c in f.cost_by_day})
    per: dict[tuple[object, str], float] = defaultdict(float)
    for c in f.cost_by_day:
        per[(c.day, c.task)] += c.cost_usd
    series = [Series(task, [per[(d, task)] for d in days], PALETTE[i % len(PALETTE)]) for i, task in enumerate(tasks)]
    rows = [
        [
            m.task,
            f"{m.provider}/{m.model}",
            count(m.results),
            count(m.tokens_in),
            count(m.tokens_out),
            usd(m.cost_usd),
            usd(m.cost_usd_per_1000),
            f"{m.tokens_per_1000:,.1f}",
        ]
        for m in f.cost_by_model
    ]
    return (
        "<h3>Cost per day, by task (USD)</h3>"
        + legend(series)
        + column_chart([d.isoformat() for d in days], series, title="cost per day by task", fmt=lambda v: f"${v:,.4g}")
        + "<h3>Per task and model</h3>"
        + _table(
            ["task", "model", "results", "tokens in", "tokens out", "cost", "cost / 1,000", "tokens / 1,000"], rows
        )
    )


def _overrides(f: Figures) -> str | None:
    if not f.overrides:
        return None
    rows = [(f"{o.task} · {o.field} · {o.prompt_version}", o.override_rate or 0.0,
             f"{pct(o.override_rate)} ({o.overridden} of {o.written})") for o in f.overrides]  # fmt: skip
    table = [
        [o.task, o.field, o.prompt_id, o.prompt_version, count(o.written), count(o.overridden), pct(o.override_rate)]
        for o in f.overrides
    ]
    return bar_list(rows, title="override rate by field and prompt version", color="#e15759", max_value=1.0) + _table(
        ["task", "field", "prompt", "version", "written", "overridden", "override rate"], table
    )


def _confidence(f: Figures) -> str | None:
    if not f.confidence:
        return None
    buckets = [round(b / 10, 1) for b in range(10)]
    labels = [f"{b:.1f}" for b in buckets]
    parts = []
    fields = list(dict.fromkeys(c.field for c in sorted(f.confidence, key=lambda c: (c.field != "overall", c.field))))
    for field in fields:
        per = {(c.bucket, c.review_decision): c.results for c in f.confidence if c.field == field}
        series = [
            Series(name, [per.get((b, decision), 0) for b in buckets], color)
            for decision, (_, name, color) in zip(("auto_apply", "suggest", "skip"), DECISIONS, strict=True)
        ]
        title = "lowest field confidence (overall)" if field == "overall" else f"{field} confidence"
        parts.append(f"<h3>{escape(title)}</h3>")
        if field == fields[0]:
            parts.append(legend(series))
        parts.append(column_chart(labels, series, title=title, fmt=lambda v: f"{v:,.0f}", height=180))
    return "".join(parts)


def _dlq(f: Figures) -> str | None:
    if not f.dlq:
        return None
    top = max((d.dlq_rate or 0.0 for d in f.dlq), default=0.0)
    rows = [(d.topic, d.dlq_rate or 0.0, f"{pct(d.dlq_rate)} ({d.dead_lettered} of {count(d.records)})") for d in f.dlq]
    table = [[d.topic, count(d.records), count(d.dead_lettered), pct(d.dlq_rate)] for d in f.dlq]
    return bar_list(rows, title="dead-letter rate by topic", color="#e15759", max_value=max(top, 0.01)) + _table(
        ["topic", "records", "dead-lettered", "DLQ rate"], table
    )


def _latency(f: Figures) -> str | None:
    if not f.crm_latency:
        return None
    rows = [(f"{x.task} · {x.field}", x.p95_s,
             f"p50 {duration(x.p50_s)} · p95 {duration(x.p95_s)}") for x in f.crm_latency]  # fmt: skip
    table = [
        [x.task, x.field, count(x.writes), duration(x.p50_s), duration(x.p95_s), duration(x.max_s)]
        for x in f.crm_latency
    ]
    return bar_list(rows, title="event to CRM field, p95", color="#4e79a7") + _table(
        ["task", "field", "writes", "p50", "p95", "max"], table
    )


def render_html(f: Figures) -> str:
    """The whole dashboard as one HTML document."""
    since = f.since.isoformat()
    sections = [
        _section(
            "volume",
            "Volume",
            "AI results by day of the source event; tickets by category and priority.",
            _volume(f),
            "No results in this period.",
        ),
        _section(
            "automation",
            "Automation rate",
            "The AI's own decision per result: applied to the CRM automatically, suggested for review, or skipped.",
            _automation(f),
            "No results in this period.",
        ),
        _section(
            "cost",
            "Cost and tokens",
            "LLM cost and tokens per task, model and day, and per 1,000 results (a local model costs nothing).",
            _cost(f),
            "No results in this period.",
        ),
        _section(
            "overrides",
            "Override rate",
            "Of the AI values written to a CRM field, the share a person changed "
            "afterwards: the quality signal, by field and prompt version.",
            _overrides(f),
            "No CRM writes in this period.",
        ),
        _section(
            "confidence",
            "Confidence distribution",
            "Ticket classifications by confidence (buckets of 0.1), split by the review decision taken.",
            _confidence(f),
            "No ticket classifications in this period.",
        ),
        _section(
            "dlq",
            "Dead-letter rate",
            "Share of records per topic that a consumer moved to its dead-letter topic.",
            _dlq(f),
            "No records in this period.",
        ),
        _section(
            "latency",
            "Event to CRM latency",
            "Time from the source event to the AI value in the CRM field.",
            _latency(f),
            "No CRM writes in this period.",
        ),
    ]
    generated = f.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>crmpilot dashboard since {since}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>crmpilot — AI decisions dashboard</h1><p class="meta">From {since} (UTC) · generated {generated} '
        "· from the warehouse's bi views</p>" + _tiles(f) + "".join(sections) + "</main></body></html>"
    )
