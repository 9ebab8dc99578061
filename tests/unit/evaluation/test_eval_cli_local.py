"""`crmpilot train` then `crmpilot eval run` with the trained head, on the real embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from eval_testkit import TICKETS, write_csv
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.cli import train as train_cli
from crmpilot.evaluation import load_report
from crmpilot.llm.local.trained import load_head

HELD_OUT = [
    ("my card hasn't come in the post yet", "card_arrival"),
    ("somebody stole my bank card", "lost_or_stolen_card"),
    ("what rate do you apply when exchanging currency", "exchange_rate"),
    ("карту украли в метро", "lost_or_stolen_card"),
]


def _root() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(train_cli.app, name="train")
    root.add_typer(eval_cli.app, name="eval")
    return root


def test_train_then_eval_with_the_trained_head(tmp_path: Path) -> None:
    runner, root = CliRunner(), _root()
    env = {"COLUMNS": "200", "CRMPILOT_LLM_LOCAL_HEAD": "", "CRMPILOT_LLM_PROVIDER": "local"}
    history = write_csv(tmp_path / "history.csv")
    trained = runner.invoke(
        root,
        ["train", "--data", str(history), "--out", str(tmp_path / "heads"), "--c", "50", "--dev-fraction", "0.25"],
        env=env,
    )
    assert trained.exit_code == 0, trained.output
    (folder,) = (tmp_path / "heads").iterdir()
    head = load_head(folder)
    assert folder.name == head.id and f"CRMPILOT_LLM_LOCAL_HEAD={folder}" in trained.output
    assert json.loads((folder / "head.json").read_text())["training"]["source"] == str(history)

    test = write_csv(tmp_path / "test.csv", HELD_OUT)
    out = tmp_path / "reports"
    result = runner.invoke(
        root,
        ["eval", "run", "--data", str(test), "--head", str(folder), "--out", str(out), "--name", "trained"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = load_report(out / "trained.json")
    assert report.run.head == head.id and report.run.provider == "local"
    assert report.run.model_version is not None and report.run.model_version.endswith(head.id)
    assert {i.predicted for i in report.items} <= set(TICKETS) and not report.errors
    assert report.quality.accuracy >= 0.75
    assert report.cost.total_usd == 0 and report.latency_ms.p50 > 0


def test_usage_errors_are_explained(tmp_path: Path) -> None:
    runner, root = CliRunner(), _root()
    assert "CRMPILOT_LLM_LOCAL_HEAD" in runner.invoke(root, ["train", "--help"], env={"COLUMNS": "200"}).output
    result = runner.invoke(root, ["train"])
    assert result.exit_code == 2 and "exactly one of --data FILE, --sql QUERY or --soql QUERY" in result.output
    bad = write_csv(tmp_path / "one.csv", [("only one example", "lonely"), ("another", "other"), ("more", "other")])
    result = runner.invoke(root, ["train", "--data", str(bad), "--out", str(tmp_path / "h")])
    assert result.exit_code == 1 and "lonely" in result.output
    test = write_csv(tmp_path / "t.csv", [("x", "not_a_category")])
    result = runner.invoke(
        root, ["eval", "run", "--data", str(test), "--provider", "local"], env={"CRMPILOT_LLM_LOCAL_HEAD": ""}
    )
    assert result.exit_code == 1 and "labels outside the taxonomy: not_a_category" in result.output
