"""`crmpilot train --soql`: the demo org's closed cases teach the local model, which then classifies its open ones.

This is `make demo`'s first step (the Makefile's DEMO_SOQL, read from the
Makefile so the two cannot drift): SOQL through simple-salesforce against the
sandbox, every page of the answer, a head with its dev accuracy, the setting
that uses it in an env file, and the open cases classified by that head.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
from sandbox_support import Sandbox
from typer.testing import CliRunner

from crm_sandbox.history import HISTORY_SIZE
from crmpilot.cli.main import app
from crmpilot.crm.source import case_events, fetch_case_records
from crmpilot.llm.local import LocalProvider
from crmpilot.llm.local.trained import load_head
from crmpilot.tasks import CLASSIFY_TICKET
from crmpilot.tasks.classify_ticket import payload_for

pytestmark = pytest.mark.integration

MAKEFILE = Path(__file__).resolve().parents[3] / "Makefile"


def _make_var(name: str) -> str:
    match = re.search(rf"^{name} :?= (.+)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{name} is not set in the Makefile"
    return match.group(1).strip()


def test_the_demo_learns_from_the_orgs_closed_cases_then_classifies_the_open_ones(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb.admin("POST", "seed", json={"dataset": "demo"})
    sb.admin("POST", "seed", json={"dataset": "history"})
    env = {
        "CRMPILOT_SALESFORCE_INSTANCE_URL": sb.url,
        "CRMPILOT_SALESFORCE_CA_BUNDLE": str(sb.ca),
        "CRMPILOT_SALESFORCE_SESSION_ID": sb.settings.session_token.get_secret_value(),
        "COLUMNS": "200",
    }
    env_file = tmp_path / "run dir" / "demo-head.env"  # a space in the path, as a user's checkout may have
    args = ["train", "--soql", _make_var("DEMO_SOQL"), "--label-column", "AI_Category__c", "--gate-pass-rate", "0.99"]
    out = ["--out", str(tmp_path / "run dir" / "heads"), "--env-file", str(env_file)]
    result = CliRunner().invoke(app, [*args, *out], env=env)
    assert result.exit_code == 0, result.output
    assert f"{HISTORY_SIZE} labelled tickets, 12 labels from soql query" in result.output, "every page was read"
    assert "dev accuracy" in result.output
    sourced = subprocess.run(  # as the Makefile reads it
        ["bash", "-c", 'set -a; . "$1"; printf %s "$CRMPILOT_LLM_LOCAL_HEAD"', "-", str(env_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    head_path = sourced.stdout
    head = load_head(head_path)
    assert head_path.startswith(str(tmp_path)) and head.gate is not None
    assert head.meta["training"]["source"] == "soql query"

    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_HEAD", head_path)
    provider = LocalProvider()
    assert provider.head is not None and provider.head.id == load_head(head_path).id
    open_cases = case_events(fetch_case_records(sb.client(), open_only=True), source="crm://test")
    assert len(open_cases) == 20, "the history is closed: only the demo's new cases are open"

    async def classify() -> list[tuple[float, str]]:
        answers = [await provider.complete(CLASSIFY_TICKET, payload_for(e.data)) for e in open_cases]
        return [(a.output.confidence.category, a.model_version or "") for a in answers]

    answers = asyncio.run(classify())
    unclassified = [c for c, _ in answers if c < 0.5]
    assert len(unclassified) <= 2, answers
    assert all(version.endswith(f"+{head.id}") for _, version in answers), "provenance names the head"


def test_a_bad_soql_query_or_no_records_is_a_clear_error(sb: Sandbox, tmp_path: Path) -> None:
    env = {
        "CRMPILOT_SALESFORCE_INSTANCE_URL": sb.url,
        "CRMPILOT_SALESFORCE_CA_BUNDLE": str(sb.ca),
        "CRMPILOT_SALESFORCE_SESSION_ID": sb.settings.session_token.get_secret_value(),
        "COLUMNS": "200",
    }
    out = ["--out", str(tmp_path / "heads")]
    bad = CliRunner().invoke(app, ["train", "--soql", "SELECT Nope__c FROM Case", *out], env=env)
    assert bad.exit_code == 1 and "the SOQL query failed" in bad.output and "Nope__c" in bad.output, bad.output
    empty = CliRunner().invoke(
        app, ["train", "--soql", "SELECT Subject, AI_Category__c FROM Case WHERE IsClosed = true", *out], env=env
    )
    assert empty.exit_code == 1 and "returned no records" in empty.output, empty.output
    both = CliRunner().invoke(app, ["train", "--soql", "SELECT Id FROM Case", "--sql", "select 1", *out], env=env)
    assert both.exit_code == 2 and "exactly one of" in both.output
