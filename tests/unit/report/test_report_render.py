"""The dashboard page from figures, without a database: sections, empty states, escaping, axes, --since."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import typer

from crmpilot.cli.report import parse_since
from crmpilot.warehouse.report import Figures, render_html
from crmpilot.warehouse.report.figures import (
    Automation,
    ConfidenceBucket,
    Override,
    TicketVolume,
    Totals,
    VolumeDay,
    rate,
)
from crmpilot.warehouse.report.svg import Series, column_chart

SECTIONS = ("volume", "automation", "cost", "overrides", "confidence", "dlq", "latency")


def figures(**kw: object) -> Figures:
    nothing = Automation(0, 0, 0, 0, None)
    fields: dict[str, object] = {
        "since": date(2024, 5, 1), "generated_at": datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        "totals": Totals(0, nothing, 0.0, None, 0, 0, 0, None, 0, 0, None, 0, None),
        "volume_by_day": [], "tickets": [], "automation_by_task": {}, "automation_by_day": [], "cost_by_day": [],
        "cost_by_model": [], "overrides": [], "confidence": [], "dlq": [], "crm_latency": [],
    }  # fmt: skip
    return Figures(**(fields | kw))  # type: ignore[arg-type]  # each test's overrides, checked by Figures' validation


def section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert found is not None, name
    return found[1]


def test_an_empty_period_renders_every_section_saying_so() -> None:
    page = render_html(figures())
    for name in SECTIONS:
        assert 'class="empty"' in section(page, name)
    assert 'class="mark"' not in page
    assert page.startswith("<!DOCTYPE html>") and "From 2024-05-01 (UTC)" in page


def test_text_from_the_data_is_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    page = render_html(figures(
        volume_by_day=[VolumeDay(date(2024, 5, 1), "classify_ticket", 2)],
        tickets=[TicketVolume(hostile, "High", 2)],
        overrides=[Override("classify_ticket", hostile, "p", "v1", 2, 1, 0.5)],
    ))  # fmt: skip
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert section(page, "volume").count('class="mark"') == 2  # one column per day, one per category
    assert "50.0 % (1 of 2)" in section(page, "overrides")


def test_confidence_and_automation_sections_show_their_numbers() -> None:
    page = render_html(figures(
        automation_by_task={"classify_ticket": Automation(4, 2, 1, 1, 0.5)},
        confidence=[ConfidenceBucket("overall", 0.8, "auto_apply", 3), ConfidenceBucket("overall", 0.1, "skip", 1)],
    ))  # fmt: skip
    automation = section(page, "automation")
    assert '<td class="n">50.0 %</td>' in automation
    assert automation.count('class="mark"') == 3  # auto, suggest, skip stacked
    assert "0.8 · auto-applied: 3" in section(page, "confidence")


def test_axes_use_round_steps() -> None:
    svg = column_chart(["a", "b"], [Series("s", [4, 5], "#000")], title="t", fmt=lambda v: f"{v:g}")
    assert re.findall(r'text-anchor="end" fill="#6b7280">([^<]+)<', svg) == ["0", "2", "4", "6"]
    money = column_chart(["a"], [Series("s", [0.007], "#000")], title="t", fmt=lambda v: f"{v:g}")
    assert re.findall(r'text-anchor="end" fill="#6b7280">([^<]+)<', money) == ["0", "0.002", "0.004", "0.006", "0.008"]


def test_rates_and_since() -> None:
    assert (rate(1, 3), rate(0, 0)) == (0.3333, None)
    today = date(2024, 5, 31)
    assert parse_since("30d", today=today) == date(2024, 5, 1)
    assert parse_since("2024-01-02", today=today) == date(2024, 1, 2)
    with pytest.raises(typer.BadParameter):
        parse_since("last week", today=today)
