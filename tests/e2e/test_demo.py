"""`crmpilot demo run` on the real services: cases, emails and leads enriched, one table per task.

The demo's topics are pointed at the session's (everything else comes from the
same environment variables `make demo` sets), so it runs beside the other
modules without touching the shared topics.
"""

from __future__ import annotations

import json

import pytest
from e2e_stack import Pipeline
from typer.testing import CliRunner

from crmpilot.cli import demo

pytestmark = pytest.mark.e2e


def test_the_demo_shows_all_three_services_at_work(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CRMPILOT_KAFKA_BOOTSTRAP",
        "CRMPILOT_DATABASE_URL",
        "CRMPILOT_SALESFORCE_INSTANCE_URL",
        "CRMPILOT_SALESFORCE_CA_BUNDLE",
    ):
        monkeypatch.setenv(name, pipeline.env[name])
    monkeypatch.setattr(demo, "CASE_TOPIC", pipeline.topics.cases)
    monkeypatch.setattr(demo, "EMAIL_TOPIC", pipeline.topics.emails)
    monkeypatch.setattr(demo, "LEAD_TOPIC", pipeline.topics.leads)
    # the company taxonomy of examples/enrichments/ticket_type.yaml runs beside the built-ins, as `make demo` runs it
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", pipeline.env["CRMPILOT_ENRICHMENTS_DIR"])
    pipeline.start(
        "enricher",
        "--enrichment",
        "ticket_type",
        label="enricher_ticket_type",
        env={
            "CRMPILOT_ENRICHER_GROUP_ID": f"{pipeline.groups['crm_writer']}-enricher-ticket-type",
            "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([pipeline.topics.cases]),
            "CRMPILOT_ENRICHER_OUTPUT_TOPIC": pipeline.topics.enriched,
        },
    )
    result = CliRunner().invoke(demo.app, ["--timeout", "180"])  # a one-command app: `demo run` in the CLI
    out = result.output
    assert result.exit_code == 0, out
    assert "20 cases" in out and "4 emails" in out and "5 leads" in out
    for title in ("ticket_classifier", "email_summarizer", "score_request"):
        assert f"by {title}" in out, f"no table for {title}:\n{out}"
    assert "bi.ticket_type" in out, out
    assert "49 results stored with provenance" in out and "20 ticket_type" in out and "CRM records written: " in out
    assert "2/2 bad records set aside" in out
    print(out)
