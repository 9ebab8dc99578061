"""`crmpilot eval run` on the OpenAI path: the real openai SDK against the OpenAI-protocol test server."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from eval_testkit import TICKETS, write_csv
from typer.testing import CliRunner

from crmpilot.cli import eval as eval_cli
from crmpilot.evaluation import load_report
from crmpilot.llm.testing import ChatRequest, OpenAITestServer, bad_request

_KEYWORDS = {
    "stol": "lost_or_stolen_card",
    "lost": "lost_or_stolen_card",
    "укра": "lost_or_stolen_card",
    "rate": "exchange_rate",
    "курс": "exchange_rate",
}


def _answer(req: ChatRequest) -> dict[str, object]:
    ticket = req.messages[-1]["content"].split("Description:")[-1].lower()
    category = next((label for key, label in _KEYWORDS.items() if key in ticket), "card_arrival")
    return {
        "category": category,
        "queue": "general",
        "priority": "Medium",
        "sentiment": "neutral",
        "language": "en",
        "escalate": False,
        "escalation_reason": None,
        "confidence": {"category": 0.9, "priority": 0.5, "sentiment": 0.5, "language": 0.9},
        "rationale": "keyword",
    }


def test_eval_drives_the_openai_provider_and_records_cost_errors_and_prompt(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "test.csv")
    cats = tmp_path / "categories.json"
    cats.write_text(json.dumps(sorted(TICKETS)))
    prompt = tmp_path / "candidate.txt"
    prompt.write_text("Candidate prompt v2. Classify the ticket into one of:\n{categories}\nAnswer in JSON.")
    root = typer.Typer()
    root.add_typer(eval_cli.app, name="eval")
    with OpenAITestServer(_answer) as srv:
        srv.enqueue(bad_request("context too long"))
        env = {
            "CRMPILOT_LLM_BASE_URL": srv.base_url,
            "CRMPILOT_LLM_API_KEY": "sk-test",
            "CRMPILOT_LLM_PROVIDER": "",
            "COLUMNS": "200",
        }
        args = [
            "eval",
            "run",
            "--data",
            str(data),
            "--categories",
            str(cats),
            "--provider",
            "openai",
            "--model",
            "gpt-4o-mini",
        ]
        args += [
            "--prompt-file",
            str(prompt),
            "--prompt-version",
            "candidate-2",
            "--out",
            str(tmp_path / "r"),
            "--name",
            "openai",
            "--no-warmup",
        ]
        result = CliRunner().invoke(root, args, env=env)
        requests = srv.requests
    assert result.exit_code == 0, result.output
    report = load_report(tmp_path / "r" / "openai.json")
    assert (tmp_path / "r" / "openai.html").is_file()
    assert report.run.provider == "openai" and report.run.model == "gpt-4o-mini" and report.run.head is None
    assert report.run.prompt_version == "candidate-2"
    assert report.errors == {"LLMBadRequest": 1} and report.quality.n == 24
    assert report.quality.accuracy == 23 / 24  # the keyword server is right on every answered item
    assert report.cost.total_usd > 0 and report.cost.tokens_in > 0 and report.cost.tokens_out > 0
    assert len(requests) == 24
    assert all(r.messages[0]["content"].startswith("Candidate prompt v2.") for r in requests)
    schema = requests[1].response_format["json_schema"]["schema"]  # type: ignore[index]  # the candidate prompt is sent with a json_schema response format
    assert schema["properties"]["category"]["enum"] == sorted(TICKETS)  # the closed vocabulary reached the endpoint
    assert "accuracy" in result.output and "LLMBadRequest: 1" in result.output
