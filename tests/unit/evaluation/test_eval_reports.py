"""Eval reports: JSON round trip, a self-contained HTML file with charts, and `eval compare` with deltas."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import typer
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.evaluation import build_report, load_report
from crmpilot.evaluation.htmlreport import render_html
from crmpilot.evaluation.report import DatasetInfo, EvalReport, ItemResult, RunInfo


def _report(name: str, predictions: list[tuple[str, str, float]], latency: float = 20.0) -> EvalReport:
    items = [
        ItemResult(
            index=i,
            gold=g,
            predicted=p,
            confidence=c,
            latency_ms=latency + i,
            tokens_in=10,
            tokens_out=5,
            cost_usd=0.0001,
        )
        for i, (g, p, c) in enumerate(predictions)
    ]
    items.append(
        ItemResult(index=len(items), gold="b", predicted=None, confidence=None, latency_ms=1.0, error="LLMTimeout")
    )
    run = RunInfo(
        task="classify_ticket",
        provider="local",
        model="m",
        model_version="v",
        head="zero-shot",
        prompt_id="classify_ticket",
        prompt_version="1",
        prompt_hash="abc",
        concurrency=4,
    )
    data = DatasetInfo(source="<script>x.csv", sha256="0" * 64, items=len(items), labels=2)
    return build_report(items, name=name, dataset=data, run=run, wall_s=2.0)


A = [("a", "a", 0.9), ("a", "b", 0.8), ("b", "b", 0.6), ("b", "a", 0.55)]
B = [("a", "a", 0.9), ("a", "a", 0.8), ("b", "b", 0.7), ("b", "b", 0.65)]


def test_report_figures_and_json_round_trip(tmp_path: Path) -> None:
    r = _report("a", A)
    assert r.quality.n == 5 and r.quality.accuracy == 0.4
    assert r.errors == {"LLMTimeout": 1}
    assert r.calibration is not None and sum(b.count for b in r.calibration.bins) == 4  # answered items only
    assert r.cost.total_usd == 0.0004 and r.cost.tokens_in == 40
    assert r.throughput_per_s == 2.5
    assert load_report(r.save(tmp_path / "a.json")) == r


def test_html_is_self_contained_with_charts_and_escapes_text() -> None:
    page = render_html(_report("a <b>", A))
    assert page.startswith("<!doctype html>") and page.count("<svg") == 4
    assert "Reliability diagram" in page and "F1 per class" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing fetched
    assert "<script" not in page and "&lt;script&gt;x.csv" in page and "a &lt;b&gt;" in page
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL):
        root = ElementTree.fromstring(svg)  # each chart is well-formed SVG
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and len(root) > 3


def test_compare_prints_both_runs_with_deltas(tmp_path: Path) -> None:
    a = _report("baseline", A).save(tmp_path / "a.json")
    b = _report("candidate", B, latency=30.0).save(tmp_path / "b.json")
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    result = CliRunner().invoke(root, ["eval", "compare", str(a), str(b)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 4}
    assert "0.4000" in lines["accuracy"] and "0.8000" in lines["accuracy"] and "+0.4000" in lines["accuracy"]
    assert "+10.0000" in lines["latency p50 ms"]
    assert "largest per-class F1 changes" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(root, ["eval", "compare", str(a), str(bad)])
    assert result.exit_code == 1 and "not a crmpilot.eval/1 report" in result.output
