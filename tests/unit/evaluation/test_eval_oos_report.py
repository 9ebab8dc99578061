"""Out-of-scope items in an eval report: counted apart (auto-applied, at suggest, flagged), shown, compared."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from eval_testkit import write_csv
from rich.console import Console
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.evaluation import DatasetError, build_report, check_labels, load_report
from crmpilot.evaluation.console import compare_rows, summary
from crmpilot.evaluation.htmlreport import render_html
from crmpilot.evaluation.report import OOS_LABEL, DatasetInfo, EvalReport, ItemResult, RunInfo
from crmpilot.tasks.taxonomy import Category

RUN = RunInfo(
    task="classify_ticket", provider="local", model="m", model_version="v", head="head-x",
    prompt_id="classify_ticket", prompt_version="1", prompt_hash="abc", concurrency=1,
)  # fmt: skip


def _report(items: list[tuple[str, str | None, float | None, bool, bool]]) -> EvalReport:
    rows = [
        ItemResult(
            index=k,
            gold=g,
            predicted=p,
            confidence=c,
            latency_ms=1.0,
            in_scope=s,
            flagged=f,
            error=None if p else "LLMTimeout",
        )
        for k, (g, p, c, s, f) in enumerate(items)
    ]
    data = DatasetInfo(source="t.csv", sha256="0" * 64, items=len(rows), labels=3)
    return build_report(rows, name="r", dataset=data, run=RUN, wall_s=1.0)


def test_out_of_scope_items_are_counted_apart_from_the_quality_figures() -> None:
    r = _report([
        ("a", "a", 0.9, True, False), ("b", "b", 0.6, True, False), ("a", "a", 0.0, True, True),
        (OOS_LABEL, "a", 0.95, False, False), (OOS_LABEL, "b", 0.6, False, False), (OOS_LABEL, "a", 0.0, False, True),
        ("x", None, None, False, False),
    ])  # fmt: skip
    assert r.quality.n == 3 and r.quality.accuracy == 1.0  # the in-scope items
    assert r.calibration is not None and sum(b.count for b in r.calibration.bins) == 2  # the flagged answer is a veto
    assert [s.threshold for s in r.selective] == [0.5, 0.8]
    assert [s.coverage for s in r.selective] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    oos = r.out_of_scope
    assert oos is not None and oos.n == 4 and oos.labels == [OOS_LABEL, "x"]
    assert (oos.auto_applied, oos.at_suggest, oos.flagged) == (0.25, 0.5, 0.25)  # a failed item writes nothing
    assert oos.in_scope_n == 3 and oos.in_scope_flagged == pytest.approx(1 / 3)
    assert EvalReport.model_validate_json(r.model_dump_json()) == r


def test_a_report_without_out_of_scope_items_is_as_before(tmp_path: Path) -> None:
    r = _report([("a", "a", 0.9, True, False), ("b", "a", 0.6, True, False)])
    assert r.out_of_scope is None and r.quality.n == 2
    old = tmp_path / "old.json"  # a report written before the field existed
    old.write_text(r.model_dump_json(exclude={"out_of_scope"}).replace(',"in_scope":true,"flagged":false', ""))
    assert load_report(old).out_of_scope is None


def test_console_html_and_compare_show_the_out_of_scope_figures() -> None:
    with_oos = _report(
        [("a", "a", 0.9, True, False), (OOS_LABEL, "a", 0.9, False, False), (OOS_LABEL, "a", 0.0, False, True)]
    )
    without = _report([("a", "a", 0.9, True, False)])
    console = Console(width=200, record=True)
    console.print(summary(with_oos))
    text = console.export_text()
    assert "out of scope" in text and "auto-applied (≥ 0.8)" in text and "0.500" in text
    html = render_html(with_oos)
    assert "<h2>Out of scope</h2>" in html and "out of scope auto-applied" in html
    rows = {row.metric: row for row in compare_rows(without, with_oos)}
    assert rows["out of scope: auto-applied"].a is None and rows["out of scope: auto-applied"].b == 0.5
    assert "out of scope: auto-applied" not in {row.metric for row in compare_rows(without, without)}


def test_labels_marked_out_of_scope_pass_the_taxonomy_check() -> None:
    cats = (Category("a", "a", "general"), Category("b", "b", "general"))
    check_labels(["a", "b", OOS_LABEL, "other"], cats, "t.csv", out_of_scope={OOS_LABEL, "other"})
    with pytest.raises(DatasetError, match="labels outside the taxonomy: other; .*--oos-label"):
        check_labels(["a", "other"], cats, "t.csv", out_of_scope={OOS_LABEL})
    with pytest.raises(DatasetError, match="every item is marked out of scope"):
        check_labels([OOS_LABEL], cats, "t.csv", out_of_scope={OOS_LABEL})
    with pytest.raises(DatasetError, match="are categories of the taxonomy"):
        check_labels(["a"], cats, "t.csv", out_of_scope={"a"})


def test_eval_run_reports_out_of_scope_items_marked_by_label(tmp_path: Path) -> None:
    """On the real model, zero-shot over the built-in taxonomy: --oos-label marks a label, __unknown__ always does."""
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    data = write_csv(tmp_path / "t.csv", [
        ("I was charged twice for my invoice", "Billing"), ("Please refund my last payment", "Refund"),
        ("What is the weather like in Paris tomorrow?", OOS_LABEL), ("Recommend me a pizza recipe", "chitchat"),
    ])  # fmt: skip
    env = {"CRMPILOT_LLM_LOCAL_HEAD": "", "COLUMNS": "200"}
    args = [
        "eval",
        "run",
        "--data",
        str(data),
        "--provider",
        "local",
        "--out",
        str(tmp_path / "r"),
        "--name",
        "oos",
        "--no-warmup",
    ]
    refused = CliRunner().invoke(root, args, env=env)
    assert refused.exit_code == 1 and "chitchat" in refused.output and "--oos-label" in refused.output
    result = CliRunner().invoke(root, [*args, "--oos-label", "chitchat"], env=env)
    assert result.exit_code == 0, result.output
    report = load_report(tmp_path / "r" / "oos.json")
    assert report.quality.n == 2 and report.out_of_scope is not None
    assert report.out_of_scope.n == 2 and report.out_of_scope.labels == [OOS_LABEL, "chitchat"]
    assert report.out_of_scope.auto_applied == 0.0
    assert "out of scope" in result.output
