"""`crmpilot eval scores`: lead scores against known outcomes (AUC, calibration, conversion by band)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.evaluation.scores import auc
from crmpilot.llm.testing import ChatRequest, OpenAITestServer


def _answer(req: ChatRequest) -> dict[str, object]:
    text = req.messages[-1]["content"]
    score = 85 if "quote this week" in text else 50 if "next year" in text else 15
    return {  # the built-in score_request spec's answer; the band is derived from the score, never asked
        "score": score,
        "factors": [{"name": "intent", "direction": "up", "weight": 10, "evidence": "We want a"}],
        "risk_flags": [],
        "next_action": "call",
        "confidence": {"score": 0.8, "factors": 0.8, "risk_flags": 0.8, "next_action": 0.8},
    }


def _requests(path: Path) -> Path:
    rows = []
    for i in range(12):
        kind = ("quote this week", True), ("next year maybe", i % 2 == 0), ("just browsing", False)
        text, converted = kind[i % 3]
        rows.append({"id": f"r{i}", "company": f"Acme {i}", "description": f"We want a {text}.", "won": converted})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_auc_counts_ties_half_and_needs_both_outcomes() -> None:
    assert auc([90, 50, 50, 10], [True, True, False, False]) == pytest.approx(0.875)
    assert auc([90, 10], [True, True]) is None


def test_scores_report_auc_calibration_and_conversion_by_band(tmp_path: Path) -> None:
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    env = {"CRMPILOT_LLM_PROVIDER": "openai", "CRMPILOT_LLM_MODEL": "gpt-4o-mini", "CRMPILOT_LLM_API_KEY": "sk-t"}
    with OpenAITestServer(_answer) as srv:
        args = ["eval", "scores", str(_requests(tmp_path / "leads.jsonl")), "--outcome", "won", "--out", str(tmp_path)]
        result = CliRunner().invoke(
            root, [*args, "--name", "leads"], env={**env, "CRMPILOT_LLM_BASE_URL": srv.base_url}
        )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "leads.json").read_text())
    assert (report["requests"], report["scored"], report["converted"]) == (12, 12, 6)
    # converted: 4 hot (85) + 2 warm (50); not: 2 warm + 4 cold (15): pairs won 4*6 + 2*4, tied 2*2 of 36
    assert report["auc"] == pytest.approx((24 + 8 + 0.5 * 4) / 36, abs=1e-3)
    assert report["errors"] == {}
    assert report["bands"]["hot"] == {"requests": 4, "conversion_rate": 1.0}
    assert report["bands"]["warm"] == {"requests": 4, "conversion_rate": 0.5}
    assert report["bands"]["cold"] == {"requests": 4, "conversion_rate": 0.0}
    assert report["ece"] is not None and report["brier"] is not None
    assert "AUC" in (tmp_path / "leads.html").read_text()


def test_a_line_without_the_outcome_is_refused_with_its_number(tmp_path: Path) -> None:
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    data = tmp_path / "leads.jsonl"
    data.write_text('{"company": "A", "description": "x", "converted": true}\n{"company": "B", "description": "y"}\n')
    result = CliRunner().invoke(root, ["eval", "scores", str(data)], env={"CRMPILOT_LLM_PROVIDER": "local"})
    assert result.exit_code == 1
    assert "leads.jsonl:2" in result.output and "converted" in result.output
