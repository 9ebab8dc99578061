"""`crmpilot eval summaries`: crashes, grounding, placeholders and ROUGE beside LEAD, on the real embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.evaluation.summaries import first_sentence, lead_words, load_emails, rouge

EMAILS = [
    {
        "id": "m1",
        "subject": "Invoice 7781 is wrong",
        "body": "Hello, invoice 7781 from 3 March charges 120 EUR instead of 100 EUR. Please send a corrected invoice "
        "by Friday.\n\n"
        "Regards,\nAnna",
        "ann0": "Invoice 7781 overcharges by 20 EUR; a corrected invoice is needed by Friday.",
        "ann1": "Request for a corrected invoice 7781",
    },
    {
        "id": "m2",
        "subject": "Meeting moved",
        "body": "The project review moves to Thursday at 10:00 in room 4. Please bring the updated budget figures. "
        "Call me on +44 20 7946 0958 if that does not work for you.",
        "ann0": "Project review moved to Thursday 10:00; bring the budget figures.",
    },
    {
        "subject": "Order 5521",
        "body": "My order 5521 was due Monday and the tracking has not moved since. Where is it?",
    },
]


def _root() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    return root


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rouge_is_one_for_the_reference_itself_and_takes_the_best_reference() -> None:
    same = rouge("the cat sat on the mat", ["the cat sat on the mat"])
    assert (same.r1, same.r2, same.rl) == pytest.approx((1.0, 1.0, 1.0))
    assert rouge("the cat sat", ["a dog barked", "the cat sat down"]).r1 == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge("nothing in common", ["the cat sat"]).r1 == 0


def test_the_baselines_are_the_bodys_first_words_and_first_sentence() -> None:
    body = EMAILS[1]["body"]
    assert lead_words(body, 5) == "The project review moves to"
    assert first_sentence(body) == "The project review moves to Thursday at 10:00 in room 4."


def test_rows_without_an_id_are_numbered_and_references_are_optional(tmp_path: Path) -> None:
    emails = load_emails(_write(tmp_path / "e.jsonl", EMAILS))
    assert [e.id for e in emails] == ["m1", "m2", "3"]
    assert [len(e.references) for e in emails] == [2, 1, 0]


def test_the_cli_reports_every_figure_and_rouge_only_over_emails_with_references(tmp_path: Path) -> None:
    data = _write(tmp_path / "emails.jsonl", EMAILS)
    out = tmp_path / "reports"
    env = {"COLUMNS": "200", "CRMPILOT_LLM_PROVIDER": "local", "CRMPILOT_LLM_LOCAL_HEAD": ""}
    result = CliRunner().invoke(_root(), ["eval", "summaries", str(data), "--out", str(out), "--name", "mail"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "mail.json").read_text())
    assert report["emails"] == 3 and report["errors"] == {} and report["grounding_failures"] == 0
    assert report["placeholders"] == 0, "the phone number is redacted before the model and put back after"
    assert report["referenced"] == 2 and set(report["rouge"]) == {"summary", "lead", "first_sentence", "subject"}
    assert 0 < report["rouge"]["summary"]["r1"] <= 100 and report["words_per_summary"] > 0
    rouge = report["rouge"]
    assert rouge["lead"]["words"] == rouge["summary"]["words"] > 0, "LEAD is measured at the summary's length"
    assert rouge["subject"]["words"] < rouge["first_sentence"]["words"]
    assert "LEAD" in result.output and "emails/s" in result.output
    html = (out / "mail.html").read_text()
    assert html.startswith("<!doctype html>") and "ROUGE-1" in html and "http" not in html


def test_a_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_root(), ["eval", "summaries", str(tmp_path / "none.jsonl")], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "no such data set" in result.output
