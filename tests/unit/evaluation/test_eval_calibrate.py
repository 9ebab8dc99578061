"""`crmpilot eval calibrate`: an over-sure model's category confidence is tempered, measured on held-out items."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.llm import LLMClient
from crmpilot.llm.calibration import CalibrationFileError, load_calibrations
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.testing import ChatRequest, OpenAITestServer, Reply
from crmpilot.tasks import CLASSIFY_TICKET

LABELS = ["Billing", "Refund", "Technical Issue", "Account Access"]


def _answer(req: ChatRequest) -> Reply:
    """Sure of every answer (token probability 0.97), right only for tickets that name their category."""
    text = req.messages[-1]["content"]
    said = next((label for label in LABELS if f"about {label}." in text), None)
    category = said or "Billing"
    answer = {
        "category": category,
        "queue": "general",
        "priority": "Medium",
        "sentiment": "neutral",
        "language": "en",
        "escalate": False,
        "escalation_reason": None,
        "confidence": {"category": 0.99, "priority": 0.5, "sentiment": 0.5, "language": 0.9},
        "rationale": "read",
    }
    return Reply(answer, token_probs={category.split()[0]: 0.97})


def _data(path: Path, n: int = 60) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = LABELS[i % len(LABELS)]
            clear = i % 2 == 0  # half the tickets name their category: the model gets those right
            w.writerow([f"Ticket {i} about {label}." if clear else f"Ticket {i}, unclear.", label])
    return path


def _categories(path: Path) -> Path:
    path.write_text(json.dumps(LABELS))
    return path


def test_calibrate_writes_a_temperature_that_lowers_the_held_out_ece_and_the_client_applies_it(
    tmp_path: Path,
) -> None:
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    out = tmp_path / "calibration.json"
    with OpenAITestServer(_answer) as srv:
        env = {"CRMPILOT_LLM_BASE_URL": srv.base_url, "CRMPILOT_LLM_API_KEY": "sk-test", "COLUMNS": "200"}
        args = ["eval", "calibrate", "--data", str(_data(tmp_path / "cases.csv")), "--out", str(out)]
        args += ["--categories", str(_categories(tmp_path / "cats.json")), "--provider", "openai"]
        result = CliRunner().invoke(root, [*args, "--model", "gpt-4o-mini"], env=env)
        assert result.exit_code == 0, result.output
        (entry,) = load_calibrations(out).entries
        assert (entry.model, entry.task, entry.field, entry.source) == (
            "gpt-4o-mini", "classify_ticket", "category", "logprobs"
        )  # fmt: skip
        assert entry.temperature > 1.5  # 0.97 sure, about 62 % right: tempered
        assert entry.ece_before is not None and entry.ece_after is not None
        assert entry.ece_after < entry.ece_before / 2
        assert "ECE" in result.output and str(out) in result.output

        provider = OpenAIProvider(model="gpt-4o-mini", base_url=srv.base_url, api_key="sk-test")

        async def one() -> float:
            client = LLMClient(provider, calibrations=load_calibrations(out))
            payload = {"subject": "", "description": "Ticket 1, unclear.", "origin": "Web", "is_vip": False}
            try:
                run = await client.run(CLASSIFY_TICKET, payload, bypass_cache=True)
            finally:
                await client.aclose()
            return run.output.confidence.category

        calibrated = asyncio.run(one())
    assert calibrated < 0.85  # the same answer, 0.97 before calibration


def test_a_broken_calibration_file_is_refused_with_its_path_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "calibration.json"
    bad.write_text('{"version": 1,\n "entries": [\n')
    with pytest.raises(CalibrationFileError, match=r"calibration\.json:3: not JSON"):
        load_calibrations(bad)
    entry = {"model": "m", "task": "t", "prompt_version": "v", "field": "f", "source": "guess", "temperature": 2}
    bad.write_text(json.dumps({"version": 1, "entries": [{**entry, "items": 5, "fitted_at": "2026-12-07T10:00:00Z"}]}))
    with pytest.raises(CalibrationFileError, match=r"entries\.0\.source"):
        load_calibrations(bad)
