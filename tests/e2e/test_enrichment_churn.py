"""A declared enrichment end to end, no Python: Opportunity churn risk from one spec file.

``examples/enrichments/churn_risk.yaml`` runs on the generic ``enricher`` twice: on
the OpenAI-protocol test server, and on the local model (its enum zero-shot from
the values' descriptions, its reason extracted from the description). Events go
on Kafka; the fields are read back from the sandbox's Opportunity through
simple-salesforce; the row is queried from ``bi.churn_risk``; ``crmpilot trace``
shows the way. A redelivery changes nothing, a person's later edit wins, a revert
undoes the write.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from e2e_stack import REPO, Pipeline, committed_equals_end, wait_for
from psycopg.rows import dict_row

from crm_sandbox.client import sandbox_salesforce
from crmpilot.events import Envelope, RecordChanged, result_id_for
from crmpilot.llm.testing import ChatRequest, OpenAITestServer
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import produce_events
from tests.sfkit import sobject

pytestmark = pytest.mark.e2e

BOT_TOKEN = "sandbox-integration-token"
HUMAN_TOKEN = "sandbox-human-token"
PROMPT_VERSION = "2026-12-06.1"
REASON = "Their CFO said they are evaluating a competitor and may not renew the contract."
UNHAPPY = (
    f"Renewal talks for 2027 started in November. The customer complained twice about outages this quarter. {REASON}"
)
LOCAL_TEXT = (
    "Quarterly review with the operations team. They are unhappy with support response times and complained to "
    "their account manager. "
    "The customer announced they will cancel the contract and move to a competitor next month."
)


def answer(req: ChatRequest) -> dict[str, Any]:
    return {"churn_risk": "high", "churn_reason": REASON, "confidence": {"churn_risk": 0.93, "churn_reason": 0.9}}


def event(record_id: str, description: str, *, event_id: str, time: datetime | None = None) -> Envelope[RecordChanged]:
    data = RecordChanged(
        sobject="Opportunity", record_id=record_id, fields={"Name": "Renewal 2027", "Description": description}
    )
    return Envelope[RecordChanged](
        id=event_id,
        source="crm://e2e",
        type="crm.record.created",
        schemaversion=1,
        subject=record_id,
        time=time or datetime.now(UTC),
        data=data,
    )


def crmpilot(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "crmpilot"), *args],
        cwd=REPO,
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fact(pipeline: Pipeline, result_id: str) -> dict[str, Any] | None:
    with psycopg.connect(pipeline.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from bi.churn_risk where result_id = %s", (result_id,))
        return cur.fetchone()


def has_fact(pipeline: Pipeline, result_id: str) -> bool:
    return fact(pipeline, result_id) is not None


def audit(pipeline: Pipeline, result_id: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(pipeline.database_url) as conn:
        return conn.execute(
            "select status, field, after_value from warehouse.crm_write_audit where result_id = %s order by id",
            (result_id,),
        ).fetchall()


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(answer) as srv:
        yield srv


@pytest.fixture(scope="module")
def sent(pipeline: Pipeline, server: OpenAITestServer) -> dict[str, Any]:
    bot = sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, BOT_TOKEN)
    human = sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, HUMAN_TOKEN)
    opp = {
        name: sobject(bot, "Opportunity").create(
            {"Name": f"Renewal 2027 {name}", "StageName": "Negotiation/Review", "CloseDate": "2027-01-31"}
        )["id"]
        for name in ("openai", "local", "edited")
    }
    local_topic = pipeline.create_topic(f"{pipeline.topics.opportunities}.local")
    common = {"CRMPILOT_ENRICHER_ENRICHMENT": "churn_risk", "CRMPILOT_ENRICHER_OUTPUT_TOPIC": pipeline.topics.enriched}
    openai = pipeline.launch(
        "enricher",
        label="enricher_openai",
        env={
            **common,
            "CRMPILOT_LLM_PROVIDER": "openai",
            "CRMPILOT_LLM_BASE_URL": server.base_url,
            "CRMPILOT_LLM_API_KEY": "sk-test",
            "CRMPILOT_ENRICHER_GROUP_ID": f"{pipeline.groups['crm_writer']}-enricher-openai",
            "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([pipeline.topics.opportunities]),
        },
    )
    local = pipeline.launch(
        "enricher",
        "--enrichment",
        "churn_risk",
        label="enricher_local",
        env={
            "CRMPILOT_ENRICHER_OUTPUT_TOPIC": pipeline.topics.enriched,
            "CRMPILOT_ENRICHER_GROUP_ID": f"{pipeline.groups['crm_writer']}-enricher-local",
            "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([local_topic]),
        },
    )
    for svc in (openai, local):
        pipeline.wait_ready(svc)

    # the person edits the record after the event the result answers: their value must win
    edited_event = event(
        opp["edited"], UNHAPPY, event_id="e2e-churn-edited", time=datetime.now(UTC) - timedelta(minutes=1)
    )
    sobject(human, "Opportunity").update(opp["edited"], {"Churn_Risk__c": "low"})
    events = {"openai": event(opp["openai"], UNHAPPY, event_id="e2e-churn-openai"), "edited": edited_event}
    local_event = event(opp["local"], LOCAL_TEXT, event_id="e2e-churn-local")
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    produce_events(pipeline.topics.opportunities, list(events.values()), kafka=kafka)
    produce_events(local_topic, [local_event], kafka=kafka)
    ids = {
        name: result_id_for(e.id, "churn_risk", PROMPT_VERSION) for name, e in {**events, "local": local_event}.items()
    }
    for name, rid in ids.items():
        wait_for(f"bi.churn_risk row of {name}", partial(has_fact, pipeline, rid), pipeline)
    wait_for(
        "the CRM writer to finish the enrichment results",
        lambda: committed_equals_end(pipeline, pipeline.groups["crm_writer"], pipeline.topics.enriched),
        pipeline,
    )
    return {"bot": bot, "opp": opp, "ids": ids, "events": events, "kafka": kafka, "server": server}


def test_the_openai_answer_fills_the_opportunity_fields(sent: dict[str, Any]) -> None:
    record = sent["bot"].Opportunity.get(sent["opp"]["openai"])
    assert record["Churn_Risk__c"] == "high"
    assert record["Churn_Reason__c"] == REASON
    assert record["AI_Churn_Result_Id__c"] == sent["ids"]["openai"]
    assert record["AI_Churn_Review_Required__c"] is False


def test_the_local_model_answers_the_same_spec(sent: dict[str, Any]) -> None:
    record = sent["bot"].Opportunity.get(sent["opp"]["local"])
    assert record["AI_Churn_Result_Id__c"] == sent["ids"]["local"]
    assert record["Churn_Risk__c"] == "high"
    assert record["Churn_Reason__c"] and record["Churn_Reason__c"] in LOCAL_TEXT


def test_the_result_is_a_typed_row_of_bi_churn_risk(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    row = fact(pipeline, sent["ids"]["openai"])
    assert row is not None
    assert row["record_id"] == sent["opp"]["openai"] and row["churn_risk"] == "high" and row["churn_reason"] == REASON
    assert (
        row["review_decision"] == "auto_apply"
        and row["provider"] == "openai"
        and row["prompt_version"] == PROMPT_VERSION
    )
    assert row["source_topic"] == pipeline.topics.opportunities and row["confidence_churn_risk"] == pytest.approx(0.93)


def test_a_persons_later_edit_wins(sent: dict[str, Any], pipeline: Pipeline) -> None:
    record = sent["bot"].Opportunity.get(sent["opp"]["edited"])
    assert record["Churn_Risk__c"] == "low" and record["AI_Churn_Result_Id__c"] is None
    assert [status for status, _, _ in audit(pipeline, sent["ids"]["edited"])] == ["skipped_human_edit"]


def test_crmpilot_trace_shows_the_way(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    done = crmpilot(pipeline, "trace", "e2e-churn-openai", "--json")
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)
    assert [r["result_id"] for r in trail["results"]] == [sent["ids"]["openai"]]
    assert {w["field"] for w in trail["crm_writes"]} >= {"Churn_Risk__c", "Churn_Reason__c", "AI_Churn_Result_Id__c"}


def test_a_redelivery_changes_nothing_and_asks_no_model(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    before = sent["bot"].Opportunity.get(sent["opp"]["openai"])
    applied = audit(pipeline, sent["ids"]["openai"])
    asked = sent["server"].request_count
    produce_events(pipeline.topics.opportunities, [sent["events"]["openai"]], kafka=sent["kafka"])
    wait_for(
        "the enricher to read the redelivery",
        lambda: committed_equals_end(
            pipeline, f"{pipeline.groups['crm_writer']}-enricher-openai", pipeline.topics.opportunities
        ),
        pipeline,
    )
    wait_for(
        "the CRM writer to read it",
        lambda: committed_equals_end(pipeline, pipeline.groups["crm_writer"], pipeline.topics.enriched),
        pipeline,
    )
    after = sent["bot"].Opportunity.get(sent["opp"]["openai"])
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert audit(pipeline, sent["ids"]["openai"]) == applied
    assert sent["server"].request_count == asked


def test_a_revert_undoes_the_write(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    done = crmpilot(pipeline, "crm", "revert", "--result", sent["ids"]["local"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record = sent["bot"].Opportunity.get(sent["opp"]["local"])
    assert (
        record["Churn_Risk__c"] is None
        and record["Churn_Reason__c"] is None
        and record["AI_Churn_Result_Id__c"] is None
    )
