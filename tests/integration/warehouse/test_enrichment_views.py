"""Declared enrichments in PostgreSQL: one fact row per result, the typed bi.<name> views, the shared bi views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from crmpilot.cli.db import app as db_app
from crmpilot.enrichments.registry import Registry, load_registry
from crmpilot.enrichments.spec import (
    BooleanOutput,
    EnrichmentSpec,
    ItemsOutput,
    MultiEnumOutput,
    NumberOutput,
    QuotesOutput,
)
from crmpilot.enrichments.warehouse import EnrichmentViewConflict, apply_views, view_columns
from crmpilot.events import EnrichmentResult, Envelope, Provenance, result_id_for
from crmpilot.ops.trail import event_trail
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import KafkaPosition, PostgresWarehouse, connect
from crmpilot.warehouse.privacy import ERASED, erase

pytestmark = pytest.mark.integration

NewDatabase = Callable[[], DatabaseSettings]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
EVENT_TIME = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
VIEWS = ("churn_risk", "ticket_type", "deal_health", "my_report")


def enrichment(
    task: str,
    source_event_id: str,
    outputs: dict[str, Any],
    confidence: dict[str, float],
    *,
    record_id: str = "006A1000",
) -> Envelope[EnrichmentResult]:
    provenance = Provenance(
        provider="openai", model="gpt-4o-mini", prompt_id=task, prompt_version="2026-12-06.1",
        prompt_hash="a1b2c3d4e5f60718", input_hash="1" * 32, tokens_in=300, tokens_out=40,
        cost_usd=Decimal("0.00007"), latency_ms=420.0, attempts=1, trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        source_topic="crm.opportunity.events", source_partition=0, source_offset=12, source_event_id=source_event_id,
        event_time=EVENT_TIME, processed_at=EVENT_TIME + timedelta(seconds=3),
    )  # fmt: skip
    data = EnrichmentResult(
        result_id=result_id_for(source_event_id, task, "2026-12-06.1"),
        task=task,
        enrichment_version=1,
        review="auto_apply",
        provenance=provenance,
        record_id=record_id,
        outputs=outputs,
        confidence=confidence,
        field_review=dict.fromkeys(outputs, "auto_apply"),
    )
    return Envelope[EnrichmentResult](
        source="crmpilot/enricher", type="ai.enrichment.completed", schemaversion=1, subject=record_id, data=data
    )


CHURN = enrichment(
    "churn_risk", "evt-opp-1", {"churn_risk": "high", "churn_reason": "We are evaluating a competitor."},
    {"churn_risk": 0.91, "churn_reason": 0.75},
)  # fmt: skip
POSITION = KafkaPosition("ai.churn_risk", 0, 5)


@pytest.fixture(scope="module")
def settings(module_database: DatabaseSettings) -> DatabaseSettings:
    return module_database


@pytest.fixture(scope="module")
def warehouse(module_warehouse: PostgresWarehouse) -> PostgresWarehouse:
    return module_warehouse


@pytest.fixture
def conn(settings: DatabaseSettings) -> Iterator[psycopg.Connection[Any]]:
    with connect(settings) as conn:
        conn.execute("truncate warehouse.fact_enrichment, warehouse.raw_events, warehouse.erasures")
        for view in VIEWS:
            conn.execute(f"drop view if exists bi.{view}")
        yield conn


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLES])


def _columns(conn: psycopg.Connection[Any], view: str) -> list[tuple[str, str]]:
    return conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'bi' and table_name = %s order by ordinal_position",
        (view,),
    ).fetchall()


def test_a_result_written_twice_is_one_row(warehouse: PostgresWarehouse, conn: psycopg.Connection[Any]) -> None:
    assert warehouse.write_results([(CHURN, POSITION)]) == 1
    assert warehouse.write_results([(CHURN, POSITION), (CHURN, POSITION)]) == 0
    rows = conn.execute(
        "select task, enrichment_version, record_id, review_decision, outputs, confidence, confidence_by_field,"
        " field_review, grounding_failures, input_skipped, result->>'task', result_offset, cost_usd"
        " from warehouse.fact_enrichment"
    ).fetchall()
    assert rows == [
        (
            "churn_risk",
            1,
            "006A1000",
            "auto_apply",
            {"churn_risk": "high", "churn_reason": "We are evaluating a competitor."},
            0.75,
            {"churn_risk": 0.91, "churn_reason": 0.75},
            {"churn_risk": "auto_apply", "churn_reason": "auto_apply"},
            [],
            False,
            "churn_risk",
            5,
            Decimal("0.00007"),
        )
    ]


def test_the_churn_view_has_typed_columns_and_the_shared_views_count_the_result(
    warehouse: PostgresWarehouse, conn: psycopg.Connection[Any], registry: Registry
) -> None:
    ticket = enrichment("ticket_type", "evt-case-1", {"case_type": "Problem", "case_reason": "Billing"},
                        {"case_type": 0.8, "case_reason": 0.7}, record_id="500A1")  # fmt: skip
    warehouse.write_results([(CHURN, POSITION), (ticket, KafkaPosition("ai.ticket_type", 0, 9))])

    made = ["bi.score_request", "bi.churn_risk", "bi.ticket_type"]  # the built-in spec first
    assert apply_views(conn, registry) == made
    assert apply_views(conn, registry) == made  # again: dropped and made anew

    assert _columns(conn, "churn_risk") == view_columns(registry.get("churn_risk"))
    row = conn.execute("select * from bi.churn_risk").fetchall()
    assert row == [(
        CHURN.data.result_id, "006A1000", "auto_apply", "high", "We are evaluating a competitor.", 0.91, 0.75,
        "openai", "gpt-4o-mini", "2026-12-06.1", 300, 40, Decimal("0.00007"), "4bf92f3577b34da6a3ce929d0e0e4736",
        "crm.opportunity.events", 0, 12, EVENT_TIME, EVENT_TIME + timedelta(seconds=3), True,
    )]  # fmt: skip
    assert conn.execute("select record_id, case_type, case_reason from bi.ticket_type").fetchall() == [
        ("500A1", "Problem", "Billing")
    ]
    assert conn.execute(
        "select task, result_id, review_decision, cost_usd, result_topic from bi.results order by task"
    ).fetchall() == [
        ("churn_risk", CHURN.data.result_id, "auto_apply", Decimal("0.00007"), "ai.churn_risk"),
        ("ticket_type", ticket.data.result_id, "auto_apply", Decimal("0.00007"), "ai.ticket_type"),
    ]
    assert conn.execute(
        "select task, results, auto_applied from bi.automation_rate_daily where task = 'churn_risk'"
    ).fetchall() == [("churn_risk", 1, 1)]
    assert conn.execute("select task, results, cost_usd from bi.cost_by_task_model order by task").fetchall() == [
        ("churn_risk", 1, Decimal("0.00007")), ("ticket_type", 1, Decimal("0.00007")),
    ]  # fmt: skip


def test_numbers_booleans_and_quotes_are_typed_and_a_changed_spec_changes_the_view(
    warehouse: PostgresWarehouse, conn: psycopg.Connection[Any], registry: Registry
) -> None:
    churn = registry.get("churn_risk")
    deal: EnrichmentSpec = churn.model_copy(update={"name": "deal_health", "outputs": {
        "at_risk": BooleanOutput(type="boolean"),
        "seats": NumberOutput(type="number", minimum=0, maximum=10_000, integer=True),
        "health": NumberOutput(type="number", minimum=0, maximum=1),
        "evidence": QuotesOutput(type="quotes"),
        "signals": MultiEnumOutput(type="multi_enum", values={"price": "too expensive", "outages": "downtime"}),
        "steps": ItemsOutput(type="items", fields={"days": NumberOutput(type="number", minimum=0, maximum=30)}),
    }})  # fmt: skip
    quotes = [{"text": "budget cut", "quote": "Our budget was cut."}]
    warehouse.write_results(
        [
            (
                enrichment(
                    "deal_health",
                    "evt-d1",
                    {
                        "at_risk": True,
                        "seats": 12,
                        "health": 0.25,
                        "evidence": quotes,
                        "signals": ["price", "outages"],
                        "steps": [{"days": 3}],
                    },
                    {"at_risk": 0.9, "seats": 0.8, "health": 0.6, "evidence": 0.7, "signals": 0.65, "steps": 0.5},
                ),
                KafkaPosition("ai.deal_health", 0, 1),
            ),
            # written under an older spec whose at_risk was text: NULL in the view, not an error
            (
                enrichment("deal_health", "evt-d2", {"at_risk": "maybe", "signals": "price"}, {"at_risk": 0.4}),
                KafkaPosition("ai.deal_health", 0, 2),
            ),
        ]
    )

    assert apply_views(conn, [deal]) == ["bi.deal_health"]
    assert _columns(conn, "deal_health")[3:15] == [
        ("at_risk", "boolean"), ("seats", "bigint"), ("health", "double precision"), ("evidence", "jsonb"),
        ("signals", "ARRAY"), ("steps", "jsonb"), ("confidence_at_risk", "double precision"),
        ("confidence_seats", "double precision"), ("confidence_health", "double precision"),
        ("confidence_evidence", "double precision"), ("confidence_signals", "double precision"),
        ("confidence_steps", "double precision"),
    ]  # fmt: skip
    assert conn.execute("select steps -> 0 ->> 'days' from bi.deal_health where steps is not null").fetchone() == ("3",)
    assert conn.execute(
        "select at_risk, seats, health, evidence, signals, confidence_at_risk, confidence_seats from bi.deal_health"
        " order by confidence_at_risk desc"
    ).fetchall() == [
        (True, 12, 0.25, quotes, ["price", "outages"], 0.9, 0.8),
        (None, None, None, None, None, 0.4, None),
    ]
    assert conn.execute("select count(*) from bi.deal_health where 'outages' = any(signals)").fetchone() == (1,)

    fewer = deal.model_copy(update={"outputs": {"seats": deal.outputs["seats"]}})
    assert apply_views(conn, [fewer]) == ["bi.deal_health"]
    assert [c for c, _ in _columns(conn, "deal_health")][:5] == [
        "result_id", "record_id", "review_decision", "seats", "confidence_seats",
    ]  # fmt: skip


def test_a_name_taken_in_bi_is_refused_and_nothing_is_changed(
    conn: psycopg.Connection[Any], registry: Registry
) -> None:
    churn = registry.get("churn_risk")
    conn.execute("create view bi.my_report as select 1 as one")
    with pytest.raises(
        EnrichmentViewConflict, match=r"bi\.my_report already exists and was not made for an enrichment"
    ):
        apply_views(conn, [churn, churn.model_copy(update={"name": "my_report"})])
    assert conn.execute("select to_regclass('bi.churn_risk')").fetchone() == (None,)  # one transaction: rolled back
    assert conn.execute("select * from bi.my_report").fetchall() == [(1,)]

    with pytest.raises(EnrichmentViewConflict, match=r"bi\.results is a built-in view"):
        apply_views(conn, [churn.model_copy(update={"name": "results"})])
    assert len(_columns(conn, "results")) == 23


def test_the_trail_and_an_erasure_find_enrichment_rows(
    warehouse: PostgresWarehouse, conn: psycopg.Connection[Any], registry: Registry
) -> None:
    warehouse.write_results([(CHURN, POSITION)])
    apply_views(conn, registry)
    (found,) = event_trail(conn, "evt-opp-1").results
    assert (found["fact_table"], found["result_id"]) == ("fact_enrichment", CHURN.data.result_id)

    report = erase(conn, "006A1000", operator="dpo@acme.test")
    assert report.tables["warehouse.fact_enrichment"].anonymised == 1
    row = conn.execute(
        "select record_id, churn_risk, churn_reason, confidence_churn_risk, tokens_in from bi.churn_risk"
    ).fetchone()
    # the spec's categorical outputs are not known to the erasure yet: every string output is replaced
    assert row == (ERASED, ERASED, ERASED, 0.91, 300)


def test_db_migrate_makes_the_views_of_the_spec_folder(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = new_database()
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", settings.url.get_secret_value())
    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR", raising=False)
    first = CliRunner().invoke(db_app, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "applied 0007_enrichments" in first.output
    assert "enrichment views: bi.score_request" in first.output, "the built-in spec's view, without any folder"

    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    second = CliRunner().invoke(db_app, ["migrate"])
    assert second.exit_code == 0, second.output
    assert "is at version 0010 (already up to date)" in second.output
    assert "enrichment views: bi.score_request, bi.churn_risk, bi.ticket_type" in second.output
    with connect(settings) as conn:
        assert conn.execute("select count(*) from bi.churn_risk").fetchone() == (0,)

    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES / "missing"))
    broken = CliRunner().invoke(db_app, ["migrate"])
    assert broken.exit_code == 1 and "CRMPILOT_ENRICHMENTS_DIR names no folder" in broken.output
