"""``crmpilot erase`` against a real PostgreSQL: no trace of the person is left, the others and the BI figures stay."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from privacy_samples import (
    ANN,
    ANN_CASE,
    ANN_EMAIL,
    ANN_LEAD,
    ANN_TRACES,
    BOB,
    BOB_CASE,
    BOB_TRACES,
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
from crmpilot.warehouse.errors import PrivacyOperationFailed
from crmpilot.warehouse.privacy import ERASED, REDACTED_TABLES, Subject, erase

pytestmark = pytest.mark.integration


@pytest.fixture
def people(warehouse: PostgresWarehouse, db: psycopg.Connection, migrated: DatabaseSettings) -> dict[str, Person]:
    return fresh_people(warehouse, db, migrated)


def _bob_rows(db: psycopg.Connection) -> dict[str, list[Any]]:
    """Bob's rows as stored, with Ann's address (quoted in Bob's e-mail) taken out."""
    out: dict[str, list[Any]] = {}
    for schema, table in [("warehouse", s.name) for s in REDACTED_TABLES] + [
        ("warehouse", "crm_source_seen"),
        ("llm", "llm_cache"),
    ]:
        rows = db.execute(f"select t::text from {schema}.{table} t where t::text ilike %s or t::text ilike %s",
                          (f"%{BOB_CASE}%", f"%{BOB}%")).fetchall()  # fmt: skip
        out[table] = sorted(r[0].replace(ANN, ERASED) for r in rows)
    return out


def test_erasure_leaves_no_trace_keeps_the_other_person_and_the_bi_views(
    people: dict[str, Person], db: psycopg.Connection
) -> None:
    for trace in ANN_TRACES + BOB_TRACES:
        assert scan(db, trace), f"the sample data should hold {trace!r}"
    bi_before = bi_snapshot(db)
    bob_before = _bob_rows(db)

    report = erase(db, ANN, operator="dpo@acme.test")

    for trace in ANN_TRACES:
        assert scan(db, trace) == {}, f"{trace!r} is still stored"
    assert bi_snapshot(db) == bi_before
    assert _bob_rows(db) == bob_before
    for trace in BOB_TRACES:
        assert scan(db, trace)
    touched = {t: (c.anonymised, c.deleted) for t, c in report.tables.items() if c.total}
    assert touched == {
        "warehouse.raw_events": (
            6 + 2,
            0,
        ),  # Ann's 3 events and 3 raw results; Bob's e-mail quoting her and its summary
        "warehouse.fact_ticket_classification": (1, 0),
        "warehouse.fact_email_summary": (
            2,
            0,
        ),  # Ann's, and Bob's that quotes her address
        "warehouse.fact_enrichment": (1, 0),  # her lead's score
        "warehouse.crm_write_audit": (3, 0),
        "warehouse.feedback": (1, 0),
        "warehouse.dlq_log": (1, 0),
        "warehouse.crm_source_seen": (0, 2),
        "llm.llm_cache": (
            0,
            2,
        ),  # her ticket's answer (same input hash) and one naming her
    }
    # anonymised, not deleted: the typed columns and provenance stay
    row = db.execute(
        "select case_id, escalation_reason, category, tokens_in, cost_usd::text, redacted,"
        " result->>'rationale', result->>'category', result->'provenance'->>'source_event_id'"
        " from warehouse.fact_ticket_classification where result_id = %s",
        (people["ann"].result_ids[0],),
    ).fetchone()
    assert row == (
        ERASED,
        ERASED,
        "Billing",
        420,
        "0.000111",
        "erased",
        ERASED,
        "Billing",
        people["ann"].events[0].id,
    )
    # her lead's score: the score, band and risk flags stay; the free text (factors, next action, reasons) goes
    score = db.execute(
        "select record_id, task, outputs, review_decision, tokens_in from warehouse.fact_enrichment"
        " where result_id = %s",
        (people["ann"].result_ids[2],),
    ).fetchone()
    assert score is not None
    record_id, task, outputs, decision, tokens_in = score
    assert (record_id, task, decision, tokens_in) == (ERASED, "score_request", "suggest", 420)
    assert (outputs["score"], outputs["band"], outputs["risk_flags"]) == (71, "hot", ["free_mail_domain"])
    assert (outputs["next_action"], outputs["reasons"]) == (ERASED, ERASED)
    assert outputs["factors"] == [{"name": ERASED, "direction": ERASED, "weight": 40.0, "evidence": ERASED}]
    logged = db.execute(
        "select subject_hash, subject_kind, operator, total_rows, rows_touched from warehouse.erasures"
    ).fetchall()
    assert [r[:4] for r in logged] == [(Subject.parse(ANN).sha256, "email", "dpo@acme.test", report.total)]
    assert logged[0][4]["warehouse.dlq_log"] == {"anonymised": 1, "deleted": 0}


def test_a_second_erasure_finds_nothing_and_a_dry_run_changes_nothing(
    people: dict[str, Person], db: psycopg.Connection
) -> None:
    before = dump(db)
    preview = erase(db, ANN.upper(), operator="dpo", dry_run=True)
    assert dump(db) == before
    assert preview.record_id is None

    done = erase(db, ANN, operator="dpo")
    assert done.rows_touched() == preview.rows_touched()
    assert done.total > 0

    again = erase(db, ANN, operator="dpo")
    assert again.total == 0
    assert db.execute("select count(*), count(distinct subject_hash) from warehouse.erasures").fetchone() == (2, 1)


def test_erasing_a_lead_id_removes_the_lead_but_not_the_same_persons_case(
    people: dict[str, Person], db: psycopg.Connection
) -> None:
    report = erase(db, ANN_LEAD, operator="dpo")
    assert scan(db, ANN_LEAD) == {}
    assert report.tables["warehouse.fact_enrichment"].anonymised == 1  # the lead's score
    assert report.tables["warehouse.fact_ticket_classification"].anonymised == 0
    assert scan(db, ANN_CASE)  # a different record: erase it by its id or by her address
    assert db.execute("select count(*) from warehouse.erasures where subject_kind = 'id'").fetchone() == (1,)


def test_a_longer_address_or_id_is_not_matched(people: dict[str, Person], db: psycopg.Connection) -> None:
    report = erase(db, "lee@example.com", operator="dpo")  # a suffix of Ann's address
    assert report.total == 0
    assert scan(db, ANN)
    assert erase(db, ANN_EMAIL[:-1], operator="dpo").total == 0


def test_a_table_the_erasure_does_not_know_is_scrubbed_too(people: dict[str, Person], db: psycopg.Connection) -> None:
    db.execute("create table warehouse.test_notes (id int primary key, body text, tags text[], doc jsonb)")
    try:
        db.execute(
            "insert into warehouse.test_notes values (1, %s, %s, %s), (2, 'nothing here', '{}', '{}')",
            (f"call {ANN} back", ["vip", ANN], json.dumps({"to": ANN.upper(), "n": 1})),
        )
        report = erase(db, ANN, operator="dpo")
        assert report.tables["warehouse.test_notes"].anonymised == 1
        assert db.execute("select body, tags, doc from warehouse.test_notes where id = 1").fetchone() == (
            f"call {ERASED} back", ["vip", ERASED], {"to": ERASED, "n": 1},
        )  # fmt: skip
        assert scan(db, ANN) == {}
    finally:
        db.execute("drop table warehouse.test_notes")


def test_a_failing_statement_rolls_the_whole_erasure_back(people: dict[str, Person], db: psycopg.Connection) -> None:
    before = dump(db)
    db.execute("create table warehouse.test_strict (body text check (body not like '%[erased]%'))")
    try:
        db.execute("insert into warehouse.test_strict values (%s)", (f"mail {ANN}",))
        with pytest.raises(PrivacyOperationFailed, match="rolled back"):
            erase(db, ANN, operator="dpo")
        db.execute("delete from warehouse.test_strict")
    finally:
        db.execute("drop table warehouse.test_strict")
    assert dump(db) == before


def test_every_warehouse_table_is_handled_by_the_erasure(migrated: DatabaseSettings, db: psycopg.Connection) -> None:
    """A new table must be added to REDACTED_TABLES or to the list of tables without personal data."""
    no_personal_data = {
        "kpi_window",
        "crm_source_watermark",
        "schema_migrations",
        "erasures",
        "retention_purges",
    }
    deleted_from = {"crm_source_seen"}
    tables = {
        r[0]
        for r in db.execute(
            "select table_name from information_schema.tables where table_schema = 'warehouse' and table_type = "
            "'BASE TABLE'"
        ).fetchall()
    }
    assert tables == {s.name for s in REDACTED_TABLES} | no_personal_data | deleted_from


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(migrated: DatabaseSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", migrated.url.get_secret_value())
    monkeypatch.delenv("CRMPILOT_LLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRMPILOT_LLM_CACHE_SCHEMA", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_cli_erase_dry_run_then_erase_prints_a_summary_per_table(
    people: dict[str, Person], db: psycopg.Connection, cli_env: None
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["erase", "--help"]).exit_code == 0

    preview = runner.invoke(app, ["erase", "--subject", ANN, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "dry run" in preview.output and "warehouse.fact_email_summary" in preview.output
    assert ANN not in preview.output  # the summary names a hash, never the subject
    assert scan(db, ANN)

    refused = runner.invoke(app, ["erase", "--subject", ANN], input="n\n")
    assert refused.exit_code == 1
    assert scan(db, ANN)

    done = runner.invoke(app, ["erase", "--subject", ANN, "--yes", "--operator", "dpo", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["dry_run"] is False and summary["record_id"] is not None
    assert summary["tables"]["warehouse.raw_events"] == {"anonymised": 8, "deleted": 0}
    assert scan(db, ANN) == {}

    again = runner.invoke(app, ["erase", "-s", ANN, "-y"])
    assert again.exit_code == 0 and "recorded as warehouse.erasures" in again.output

    bad = runner.invoke(app, ["erase", "--subject", "ann"])
    assert bad.exit_code == 2 and "neither an e-mail address nor a record id" in bad.output


def test_a_cache_in_another_database_is_erased_in_its_own_transaction(
    people: dict[str, Person], db: psycopg.Connection, migrated: DatabaseSettings
) -> None:
    from crmpilot.warehouse import connect

    with connect(migrated) as cache_conn:  # the same server stands in for CRMPILOT_LLM_DATABASE_URL
        report = erase(db, ANN, operator="dpo", cache_conn=cache_conn)
    assert report.tables["llm.llm_cache"].deleted == 2
    assert scan(db, ANN) == {}
    logged = db.execute("select rows_touched, total_rows from warehouse.erasures").fetchone()
    assert logged is not None
    assert logged[0]["llm.llm_cache"] == {"anonymised": 0, "deleted": 2}
    assert logged[1] == report.total
