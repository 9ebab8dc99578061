"""``crmpilot db purge`` against a real PostgreSQL: old free text goes, typed columns and the BI figures stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from privacy_samples import (
    ANN,
    ANN_CASE,
    BOB,
    BOB_CASE,
    Person,
    bi_snapshot,
    dump,
    fresh_people,
    scan,
)
from typer.testing import CliRunner

from crmpilot.cli.main import app
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse
from crmpilot.warehouse.privacy import PURGED, purge

pytestmark = pytest.mark.integration

_STORED_AT = {
    "raw_events": "received_at",
    "fact_ticket_classification": "written_at",
    "fact_email_summary": "written_at",
    "fact_enrichment": "written_at",
    "crm_write_audit": "applied_at",
    "feedback": "recorded_at",
    "dlq_log": "failed_at",
}


@pytest.fixture
def aged(warehouse: PostgresWarehouse, db: psycopg.Connection, migrated: DatabaseSettings) -> dict[str, Person]:
    """Ann's rows were stored 40 days ago, Bob's today."""
    people = fresh_people(warehouse, db, migrated)
    old = datetime.now(UTC) - timedelta(days=40)
    for table, column in _STORED_AT.items():
        db.execute(
            f"update warehouse.{table} t set {column} = %s where t::text ilike %s or t::text ilike %s",
            (old, f"%{ANN_CASE}%", f"%{ANN}%"),
        )
        db.execute(
            f"update warehouse.{table} t set {column} = %s where t::text ilike '%%00QAnn%%'",
            (old,),
        )
    db.execute(
        "update llm.llm_cache set created_at = %s where output::text ilike %s",
        (old, f"%{ANN}%"),
    )
    # Bob's rows are new (his e-mail quotes Ann's address)
    for table, column in _STORED_AT.items():
        db.execute(
            f"update warehouse.{table} t set {column} = now() where t::text ilike %s or t::text ilike %s",
            (f"%{BOB}%", f"%{BOB_CASE}%"),
        )
    return people


def test_purge_replaces_old_free_text_and_keeps_typed_columns_new_rows_and_bi_views(
    aged: dict[str, Person], db: psycopg.Connection
) -> None:
    bi_before = bi_snapshot(db)
    bob_before = scan(db, BOB)

    report = purge(db, 30, operator="cron")

    # left: the CRM field values of the audit (kept by a purge), and Bob's new e-mail that quotes Ann
    assert scan(db, "Ann Lee") == {"warehouse.crm_write_audit": 1}
    assert scan(db, "Lee Consulting") == {}
    assert scan(db, ANN) == {
        "warehouse.raw_events": 2,
        "warehouse.fact_email_summary": 1,
        "warehouse.crm_write_audit": 1,
    }
    assert scan(db, ANN_CASE)  # record ids are kept: erase them by id when needed
    assert bi_snapshot(db) == bi_before
    assert scan(db, BOB) == bob_before
    counts = {t: (c.anonymised, c.deleted) for t, c in report.tables.items() if c.total}
    assert counts == {
        "warehouse.raw_events": (6, 0),
        "warehouse.fact_ticket_classification": (1, 0),
        "warehouse.fact_email_summary": (1, 0),
        "warehouse.fact_enrichment": (1, 0),  # Ann's lead's score
        "warehouse.dlq_log": (1, 0),
        "llm.llm_cache": (0, 2),  # Ann's two entries; Bob's is new
    }
    row = db.execute(
        "select case_id, category, escalation_reason, tokens_out, redacted, result->>'rationale', result->>'case_id'"
        " from warehouse.fact_ticket_classification where case_id = %s",
        (ANN_CASE,),
    ).fetchone()
    assert row == (ANN_CASE, "Billing", PURGED, 80, "purged", PURGED, ANN_CASE)
    assert db.execute(
        "select payload->>'origin', payload->>'description', payload->>'case_id' from warehouse.raw_events"
        " where subject = %s and type = 'crm.case.created'",
        (ANN_CASE,),
    ).fetchone() == ("Email", PURGED, ANN_CASE)
    logged = db.execute("select older_than_days, operator, total_rows from warehouse.retention_purges").fetchall()
    assert logged == [(30, "cron", report.total)]

    assert purge(db, 30, operator="cron").total == 0  # idempotent


def test_purge_dry_run_counts_and_changes_nothing(aged: dict[str, Person], db: psycopg.Connection) -> None:
    before = dump(db)
    preview = purge(db, 30, operator="cron", dry_run=True)
    assert dump(db) == before
    assert preview.total == purge(db, 30, operator="cron").total > 0


def test_cli_purge_uses_the_option_or_the_setting(
    aged: dict[str, Person],
    db: psycopg.Connection,
    migrated: DatabaseSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", migrated.url.get_secret_value())
    monkeypatch.delenv("CRMPILOT_LLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRMPILOT_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "purge"]).exit_code == 2
    preview = runner.invoke(app, ["db", "purge", "--older-than", "30d", "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "dry run" in preview.output and "warehouse.raw_events" in preview.output
    monkeypatch.setenv("CRMPILOT_RETENTION_DAYS", "30")
    done = runner.invoke(app, ["db", "purge"])
    assert done.exit_code == 0, done.output
    assert "recorded as warehouse.retention_purges" in done.output
    assert scan(db, "Lee Consulting") == {}
