"""Declared enrichments in the warehouse, without a database: the fact row and the bi.<name> view SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crmpilot.enrichments.registry import load_registry
from crmpilot.enrichments.spec import BooleanOutput, EnrichmentSpec, NumberOutput, QuotesOutput, TextOutput
from crmpilot.enrichments.warehouse import (
    PROVENANCE_COLUMNS,
    EnrichmentViewConflict,
    builtin_views,
    view_columns,
    view_sql,
)
from crmpilot.events import EnrichmentResult, Envelope, Provenance, result_id_for
from crmpilot.warehouse import InMemoryWarehouse, KafkaPosition
from crmpilot.warehouse.rows import FACT_TABLES, JSON_COLUMNS, fact_row

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
POSITION = KafkaPosition("ai.churn_risk", 1, 77)
EVENT_TIME = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def churn_result(source_event_id: str = "evt-opp-1", **overrides: Any) -> Envelope[EnrichmentResult]:
    provenance = Provenance(
        provider="openai", model="gpt-4o-mini", prompt_id="churn_risk", prompt_version="2026-12-06.1",
        prompt_hash="a1b2c3d4e5f60718", input_hash="0" * 32, tokens_in=300, tokens_out=40,
        cost_usd=Decimal("0.00007"), latency_ms=420.0, attempts=1, trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        source_topic="crm.opportunity.events", source_partition=0, source_offset=12,
        source_event_id=source_event_id, event_time=EVENT_TIME, processed_at=datetime(2024, 5, 1, 9, 30, 3, tzinfo=UTC),
    )  # fmt: skip
    fields: dict[str, Any] = {
        "result_id": result_id_for(source_event_id, "churn_risk", "2026-12-06.1"),
        "task": "churn_risk",
        "enrichment_version": 1,
        "review": "suggest",
        "provenance": provenance,
        "record_id": "006A1000",
        "outputs": {"churn_risk": "high", "churn_reason": "We are evaluating a competitor."},
        "confidence": {"churn_risk": 0.62, "churn_reason": 0.9},
        "field_review": {"churn_risk": "suggest", "churn_reason": "auto_apply"},
        "review_reasons": {"churn_risk": "low_confidence"},
        "truncated_chars": 17,
    }
    data = EnrichmentResult(**(fields | overrides))
    return Envelope[EnrichmentResult](
        source="crmpilot/enricher", type="ai.enrichment.completed", schemaversion=1, subject=data.record_id, data=data
    )


@pytest.fixture(scope="module")
def churn_spec() -> EnrichmentSpec:
    return load_registry([EXAMPLES]).get("churn_risk")


# --- the fact row -----------------------------------------------------------------------


def test_an_enrichment_result_is_a_fact_enrichment_row_with_outputs_confidences_and_provenance() -> None:
    envelope = churn_result()
    table, row = fact_row(envelope, POSITION)
    assert table == "fact_enrichment" and table in FACT_TABLES
    assert (row["task"], row["enrichment_version"], row["record_id"], row["review_decision"]) == (
        "churn_risk", 1, "006A1000", "suggest",
    )  # fmt: skip
    assert row["outputs"] == {"churn_risk": "high", "churn_reason": "We are evaluating a competitor."}
    assert row["confidence"] == 0.62  # the lowest field
    assert row["confidence_by_field"] == {"churn_risk": 0.62, "churn_reason": 0.9}
    assert row["field_review"] == {"churn_risk": "suggest", "churn_reason": "auto_apply"}
    assert (row["grounding_failures"], row["truncated_chars"], row["input_skipped"]) == ([], 17, False)
    assert (row["result_topic"], row["result_partition"], row["result_offset"]) == ("ai.churn_risk", 1, 77)
    assert (row["source_topic"], row["source_offset"], row["cost_usd"]) == (
        "crm.opportunity.events",
        12,
        Decimal("0.00007"),
    )
    assert row["result"] == envelope.data.model_dump(mode="json")
    assert row["result"]["review_reasons"] == {"churn_risk": "low_confidence"}
    assert {"outputs", "field_review", "confidence_by_field", "result"} <= JSON_COLUMNS


def test_a_result_left_out_of_the_crm_is_marked_so_in_its_row() -> None:
    assert fact_row(churn_result(), POSITION)[1]["to_crm"] is True
    table, row = fact_row(churn_result(to_crm=False), POSITION)
    assert (table, row["to_crm"]) == ("fact_enrichment", False)


def test_outputs_are_stored_as_json_values_and_no_confidence_is_null() -> None:
    quotes = ({"text": "unhappy", "quote": "We are unhappy."},)
    _, row = fact_row(
        churn_result(
            outputs={"evidence": quotes, "seats": 12, "at_risk": True},
            confidence={},
            field_review={},
            review_reasons={},
            grounding_failures=("We are unhappy",),
            review="skip",
        ),
        POSITION,
    )
    assert row["outputs"] == {
        "evidence": [{"text": "unhappy", "quote": "We are unhappy."}],
        "seats": 12,
        "at_risk": True,
    }
    assert row["confidence"] is None and row["confidence_by_field"] == {}
    assert row["grounding_failures"] == ["We are unhappy"]


def test_the_in_memory_warehouse_keeps_one_enrichment_row_per_result_id() -> None:
    warehouse = InMemoryWarehouse()
    batch = [(churn_result(), POSITION)]
    assert warehouse.write_results(batch) == 1
    assert warehouse.write_results(batch) == 0
    (row,) = warehouse.facts["fact_enrichment"].values()
    assert row["outputs"]["churn_risk"] == "high"


# --- the bi.<name> view -----------------------------------------------------------------


def test_the_churn_view_has_one_typed_column_per_output_its_confidences_and_provenance(
    churn_spec: EnrichmentSpec,
) -> None:
    assert view_columns(churn_spec) == [
        ("result_id", "text"), ("record_id", "text"), ("review_decision", "text"),
        ("churn_risk", "text"), ("churn_reason", "text"),
        ("confidence_churn_risk", "double precision"), ("confidence_churn_reason", "double precision"),
        ("provider", "text"), ("model", "text"), ("prompt_version", "text"), ("tokens_in", "bigint"),
        ("tokens_out", "bigint"), ("cost_usd", "numeric"), ("trace_id", "text"), ("source_topic", "text"),
        ("source_partition", "integer"), ("source_offset", "bigint"), ("event_time", "timestamp with time zone"),
        ("processed_at", "timestamp with time zone"), ("to_crm", "boolean"),
    ]  # fmt: skip
    statement = view_sql(churn_spec)
    assert statement.startswith('create view "bi"."churn_risk" as select "result_id", "record_id", "review_decision", ')
    assert "outputs ->> 'churn_risk' as \"churn_risk\"" in statement
    assert "outputs ->> 'churn_reason' as \"churn_reason\"" in statement
    assert "(confidence_by_field ->> 'churn_reason')::double precision end as \"confidence_churn_reason\"" in statement
    assert statement.endswith("from warehouse.fact_enrichment where task = 'churn_risk'")
    select = statement.index(" select ")
    columns = ("result_id", "churn_risk", "confidence_churn_risk", *PROVENANCE_COLUMNS)
    positions = [statement.index(f'"{c}"', select) for c in columns]
    assert positions == sorted(positions)


def test_number_boolean_and_quotes_outputs_get_their_sql_types(churn_spec: EnrichmentSpec) -> None:
    spec = churn_spec.model_copy(update={"outputs": {
        "at_risk": BooleanOutput(type="boolean"),
        "seats": NumberOutput(type="number", minimum=0, maximum=10_000, integer=True),
        "health": NumberOutput(type="number", minimum=0, maximum=1),
        "evidence": QuotesOutput(type="quotes"),
        "note": TextOutput(type="text"),
    }})  # fmt: skip
    assert view_columns(spec)[3:8] == [
        ("at_risk", "boolean"),
        ("seats", "bigint"),
        ("health", "double precision"),
        ("evidence", "jsonb"),
        ("note", "text"),
    ]
    statement = view_sql(spec)
    assert (
        "case when jsonb_typeof(outputs -> 'at_risk') = 'boolean' then (outputs ->> 'at_risk')::boolean end"
        in statement
    )
    assert "then (outputs ->> 'seats')::numeric::bigint end as \"seats\"" in statement
    assert "outputs -> 'evidence' as \"evidence\"" in statement


def test_a_spec_named_like_a_built_in_view_is_refused(churn_spec: EnrichmentSpec) -> None:
    assert {"results", "cost_daily", "automation_rate_daily", "kpi_window", "override_rate_daily"} <= builtin_views()
    with pytest.raises(EnrichmentViewConflict, match=r"bi\.results is a built-in view"):
        view_sql(churn_spec.model_copy(update={"name": "results"}))


def test_an_output_named_like_a_view_column_is_refused(churn_spec: EnrichmentSpec) -> None:
    spec = churn_spec.model_copy(update={"outputs": {"model": TextOutput(type="text"), "risk": TextOutput(type="text"),
                                                     "confidence_risk": TextOutput(type="text")}})  # fmt: skip
    with pytest.raises(EnrichmentViewConflict, match="two columns named confidence_risk, model"):
        view_sql(spec)


def test_names_are_checked_before_they_reach_sql(churn_spec: EnrichmentSpec) -> None:
    with pytest.raises(EnrichmentViewConflict, match="names must match"):
        view_sql(churn_spec.model_copy(update={"name": 'x"; drop table warehouse.raw_events; --'}))
