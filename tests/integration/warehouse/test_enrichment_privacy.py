"""Erasure and retention of declared enrichments in PostgreSQL: the spec's enum stays in bi.<name>, its text goes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from privacy_samples import dump, scan
from typer.testing import CliRunner

from crmpilot.cli.main import app
from crmpilot.enrichments.registry import Registry, load_registry
from crmpilot.enrichments.warehouse import apply_views
from crmpilot.events import (
    EnrichmentResult,
    Envelope,
    Provenance,
    RecordChanged,
    result_id_for,
)
from crmpilot.events.models import OutputValue
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import KafkaPosition, PostgresWarehouse, connect
from crmpilot.warehouse.privacy import ERASED, PURGED, erase, purge

pytestmark = pytest.mark.integration

NewDatabase = Callable[[], DatabaseSettings]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
SOURCE_TOPIC = "crm.opportunity.events"
ANN_OPP, BOB_OPP = "006A1000", "006B2000"
ANN_REASON = "We are evaluating a competitor."
ANN_TEXT = f"Call ann.lee@example.com first. {ANN_REASON}"
BOB_REASON = "Bob's team wants to cancel."
OLD = datetime.now(UTC) - timedelta(days=40)


def record_event(
    record_id: str, description: str, *, event_id: str, subject: str, offset: int
) -> tuple[Envelope[Any], KafkaPosition]:
    data = RecordChanged(sobject="Opportunity", record_id=record_id, fields={
        "Name": "Renewal 2027", "Description": description, "Phone__c": "+1 415 555 0132", "Amount": 5000,
    }, changed_fields=("Description",))  # fmt: skip
    envelope = Envelope[RecordChanged](id=event_id, source="crm://test", type="crm.record.created", schemaversion=1,
                                       subject=subject, time=OLD, data=data)  # fmt: skip
    return envelope, KafkaPosition(SOURCE_TOPIC, 0, offset)


def churn_result(
    record_id: str, source_event_id: str, reason: str, *, task: str = "churn_risk", offset: int
) -> tuple[Envelope[Any], KafkaPosition]:
    provenance = Provenance(
        provider="openai", model="gpt-4o-mini", prompt_id=task, prompt_version="2026-12-06.1",
        prompt_hash="a1b2c3d4e5f60718", input_hash=source_event_id.ljust(32, "0"), tokens_in=300, tokens_out=40,
        cost_usd=Decimal("0.00007"), latency_ms=420.0, attempts=1, trace_id=None, source_topic=SOURCE_TOPIC,
        source_partition=0, source_offset=offset, source_event_id=source_event_id, event_time=OLD,
        processed_at=OLD + timedelta(seconds=3),
    )  # fmt: skip
    outputs: dict[str, OutputValue] = {"churn_risk": "high", "churn_reason": reason}
    data = EnrichmentResult(
        result_id=result_id_for(source_event_id, task, "2026-12-06.1"), task=task, enrichment_version=1,
        review="auto_apply", provenance=provenance, record_id=record_id, outputs=outputs,
        confidence={"churn_risk": 0.91, "churn_reason": 0.75}, field_review=dict.fromkeys(outputs, "auto_apply"),
    )  # fmt: skip
    envelope = Envelope[EnrichmentResult](source="crmpilot/enricher", type="ai.enrichment.completed", schemaversion=1,
                                          subject=record_id, data=data)  # fmt: skip
    return envelope, KafkaPosition(f"ai.{task}", 0, offset)


@pytest.fixture(scope="module")
def settings(module_database: DatabaseSettings) -> DatabaseSettings:
    return module_database


@pytest.fixture(scope="module")
def warehouse(module_warehouse: PostgresWarehouse) -> PostgresWarehouse:
    return module_warehouse


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLES])


@pytest.fixture
def conn(
    settings: DatabaseSettings, warehouse: PostgresWarehouse, registry: Registry
) -> Iterator[psycopg.Connection[Any]]:
    """Ann's opportunity (stored 40 days ago: its source event, a later update about it, its churn result)
    and Bob's (stored now), with bi.churn_risk."""
    with connect(settings) as conn:
        conn.execute(
            "truncate warehouse.fact_enrichment, warehouse.raw_events, warehouse.erasures, warehouse.retention_purges"
        )
        sources = [
            record_event(ANN_OPP, ANN_TEXT, event_id="evt-ann-1", subject=ANN_OPP, offset=1),
            # keyed differently: found by the payload's record_id
            record_event(ANN_OPP, ANN_TEXT, event_id="evt-ann-2", subject="opportunity-of-ann", offset=2),
            record_event(BOB_OPP, BOB_REASON, event_id="evt-bob-1", subject=BOB_OPP, offset=3),
        ]
        results = [churn_result(ANN_OPP, "evt-ann-1", ANN_REASON, offset=1),
                   churn_result(BOB_OPP, "evt-bob-1", BOB_REASON, offset=2)]  # fmt: skip
        warehouse.write_raw_events([*sources, *results])
        warehouse.write_results(results)
        for table, column in (("raw_events", "received_at"), ("fact_enrichment", "written_at")):
            conn.execute(
                f"update warehouse.{table} t set {column} = %s where t::text like %s",
                (OLD, f"%{ANN_OPP}%"),
            )
        apply_views(conn, registry)
        yield conn


def _churn_view(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select record_id, churn_risk, churn_reason, confidence_churn_risk, tokens_in from bi.churn_risk order "
        "by tokens_in, churn_reason"
    ).fetchall()


def _payload(conn: psycopg.Connection[Any], event_id: str) -> tuple[Any, Any]:
    row = conn.execute("select payload, redacted from warehouse.raw_events where event_id = %s", (event_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def _raw_result(conn: psycopg.Connection[Any], source_event_id: str) -> dict[str, Any]:
    row = conn.execute(
        "select payload from warehouse.raw_events where type = 'ai.enrichment.completed'"
        " and payload->'provenance'->>'source_event_id' = %s",
        (source_event_id,),
    ).fetchone()
    assert row is not None
    payload: dict[str, Any] = row[0]
    return payload


def test_a_purge_keeps_the_churn_risk_and_replaces_the_churn_reason(
    conn: psycopg.Connection[Any], registry: Registry
) -> None:
    report = purge(conn, 30, operator="cron", registry=registry)
    assert report.tables["warehouse.fact_enrichment"].anonymised == 1
    assert report.tables["warehouse.raw_events"].anonymised == 3  # Ann's two source events and her result event
    assert not report.enrichments_without_spec and not report.record_topics_without_spec

    assert sorted(_churn_view(conn)) == [
        (ANN_OPP, "high", PURGED, 0.91, 300),
        (BOB_OPP, "high", BOB_REASON, 0.91, 300),  # stored today: untouched
    ]
    row = conn.execute(
        "select outputs, result, redacted from warehouse.fact_enrichment where record_id = %s", (ANN_OPP,)
    ).fetchone()
    assert row is not None
    outputs, result, redacted = row
    assert outputs == {"churn_risk": "high", "churn_reason": PURGED} and redacted == "purged"
    assert result["outputs"] == outputs
    assert (result["record_id"], result["field_review"]) == (
        ANN_OPP,
        {"churn_risk": "auto_apply", "churn_reason": "auto_apply"},
    )
    assert _raw_result(conn, "evt-ann-1")["outputs"] == outputs

    payload, redacted = _payload(conn, "evt-ann-1")
    assert redacted == "purged"
    assert payload == {
        "sobject": "Opportunity",
        "record_id": ANN_OPP,
        "changed_fields": ["Description"],
        "last_modified": None,
        "fields": {"Name": "Renewal 2027", "Description": PURGED, "Phone__c": PURGED, "Amount": 5000},
    }
    assert scan(conn, ANN_REASON) == {} and scan(conn, "ann.lee@example.com") == {}

    again = purge(conn, 30, operator="cron", registry=registry)
    assert again.total == 0


def test_an_erasure_by_record_id_keeps_the_churn_risk_and_erases_the_reason_and_the_id(
    conn: psycopg.Connection[Any], registry: Registry
) -> None:
    bob_before = {t: [r for r in rows if BOB_OPP in r] for t, rows in dump(conn).items()}
    preview = erase(conn, ANN_OPP, operator="dpo", dry_run=True, registry=registry)
    report = erase(conn, ANN_OPP, operator="dpo", registry=registry)
    assert preview.rows_touched() == report.rows_touched()
    assert report.tables["warehouse.fact_enrichment"].anonymised == 1
    assert report.tables["warehouse.raw_events"].anonymised == 3

    assert sorted(_churn_view(conn)) == [
        (BOB_OPP, "high", BOB_REASON, 0.91, 300),
        (ERASED, "high", ERASED, 0.91, 300),
    ]
    assert conn.execute("select count(*), sum(cost_usd) from bi.results").fetchone() == (2, Decimal("0.00014"))
    for event_id in ("evt-ann-1", "evt-ann-2"):  # evt-ann-2 is found by its payload's record_id
        payload, redacted = _payload(conn, event_id)
        assert redacted == "erased"
        assert (payload["record_id"], payload["sobject"], payload["fields"]) == (
            ERASED, "Opportunity", {"Name": "Renewal 2027", "Description": ERASED, "Phone__c": ERASED, "Amount": 5000},
        )  # fmt: skip
    for needle in (ANN_OPP, ANN_REASON, "ann.lee@example.com", "opportunity-of-ann"):
        assert scan(conn, needle) == {}, needle
    assert {t: [r for r in rows if BOB_OPP in r] for t, rows in dump(conn).items()} == bob_before


def test_a_row_of_an_enrichment_without_a_spec_is_all_free_text(
    conn: psycopg.Connection[Any], warehouse: PostgresWarehouse
) -> None:
    warehouse.write_results([churn_result(ANN_OPP, "evt-ann-2", ANN_REASON, task="lead_fit", offset=9)])
    conn.execute("update warehouse.fact_enrichment set written_at = %s where task = 'lead_fit'", (OLD,))
    ticket_only = [load_registry([EXAMPLES]).get("ticket_type")]  # reads crm.case.events, not opportunities

    dry = purge(conn, 30, operator="cron", dry_run=True, registry=ticket_only)
    report = purge(conn, 30, operator="cron", registry=ticket_only)
    for r in (dry, report):
        assert r.enrichments_without_spec == {"churn_risk", "lead_fit"}
        assert r.record_topics_without_spec == {SOURCE_TOPIC}
        assert r.to_json()["enrichments_without_spec"] == ["churn_risk", "lead_fit"]
    assert conn.execute(
        "select task, outputs from warehouse.fact_enrichment where written_at < now() - interval '30 days' "
        "order by task"
    ).fetchall() == [
        ("churn_risk", {"churn_risk": PURGED, "churn_reason": PURGED}),
        ("lead_fit", {"churn_risk": PURGED, "churn_reason": PURGED}),
    ]
    payload, _ = _payload(conn, "evt-ann-1")
    assert payload["fields"] == {"Name": PURGED, "Description": PURGED, "Phone__c": PURGED, "Amount": 5000}


def test_the_default_registry_is_read_when_the_function_runs(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    report = purge(conn, 30, operator="cron")
    assert report.enrichments_without_spec == set()
    assert (ANN_OPP, "high", PURGED, 0.91, 300) in _churn_view(conn)

    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR")  # no specs: the erasure falls back to all free text
    erased = erase(conn, BOB_OPP, operator="dpo")
    assert erased.enrichments_without_spec == {"churn_risk"}
    assert (ERASED, ERASED, ERASED, 0.91, 300) in _churn_view(conn)


@pytest.fixture
def cli_env(settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", settings.url.get_secret_value())
    monkeypatch.delenv("CRMPILOT_LLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_the_cli_reads_the_spec_folder_and_says_what_had_no_spec(
    conn: psycopg.Connection[Any], cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = CliRunner()
    blind = runner.invoke(app, ["db", "purge", "--older-than", "30d", "--dry-run"])
    assert blind.exit_code == 0, blind.output
    assert "no spec registered for enrichment(s) churn_risk" in blind.output and "would be treated" in blind.output
    assert f"no spec reads the crm.record.* events of {SOURCE_TOPIC}" in blind.output

    (tmp_path / "broken.yaml").write_text("name: Broken\n")
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(tmp_path))
    broken = runner.invoke(app, ["erase", "--subject", ANN_OPP, "--yes"])
    assert broken.exit_code == 1 and "broken.yaml" in broken.output
    assert conn.execute("select count(*) from warehouse.erasures").fetchone() == (0,)

    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    done = runner.invoke(app, ["erase", "--subject", ANN_OPP, "--yes", "--operator", "dpo", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["tables"]["warehouse.fact_enrichment"] == {"anonymised": 1, "deleted": 0}
    assert summary["enrichments_without_spec"] == [] and summary["record_topics_without_spec"] == []
    assert (ERASED, "high", ERASED, 0.91, 300) in _churn_view(conn)
