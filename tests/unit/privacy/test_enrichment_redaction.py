"""Erasure and retention of declared enrichments follow their specs: categorical outputs stay, personal text goes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crmpilot.enrichments.registry import Registry, load_registry
from crmpilot.enrichments.spec import (
    BooleanOutput,
    EnrichmentSpec,
    EnumOutput,
    MultiEnumOutput,
    NumberOutput,
    QuotesOutput,
)
from crmpilot.events import EnrichmentResult, Provenance
from crmpilot.warehouse.privacy import (
    ERASED,
    PURGED,
    REDACTED_TABLES,
    Subject,
    output_kept,
    redact_enrichment_outputs,
    redact_enrichment_result,
    redact_record_event,
    redact_row,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
FACT = next(s for s in REDACTED_TABLES if s.name == "fact_enrichment")
RAW = next(s for s in REDACTED_TABLES if s.name == "raw_events")
ANN = Subject.parse("ann.lee@example.com")
REASON = "We are evaluating a competitor."


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLES])


@pytest.fixture(scope="module")
def churn(registry: Registry) -> EnrichmentSpec:
    return registry.get("churn_risk")


@pytest.fixture(scope="module")
def deal(churn: EnrichmentSpec) -> EnrichmentSpec:
    return churn.model_copy(update={"name": "deal_health", "personal_outputs": ("stage",), "outputs": {
        "at_risk": BooleanOutput(type="boolean"),
        "seats": NumberOutput(type="number", minimum=0, maximum=10_000, integer=True),
        "evidence": QuotesOutput(type="quotes"),
        "stage": EnumOutput(type="enum", values={"open": "", "won": ""}),
        "signals": MultiEnumOutput(type="multi_enum", values={"price": "", "outages": ""}),
    }})  # fmt: skip


def _result(outputs: dict[str, Any]) -> dict[str, Any]:
    provenance = Provenance(
        provider="openai", model="gpt-4o-mini", prompt_id="churn_risk", prompt_version="2026-12-06.1",
        prompt_hash="a1b2c3d4e5f60718", input_hash="1" * 32, tokens_in=300, tokens_out=40,
        cost_usd=Decimal("0.00007"), latency_ms=420.0, attempts=1, trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        source_topic="crm.opportunity.events", source_partition=0, source_offset=12, source_event_id="evt-opp-1",
        event_time=datetime(2024, 5, 1, tzinfo=UTC), processed_at=datetime(2024, 5, 1, 0, 0, 3, tzinfo=UTC),
    )  # fmt: skip
    return EnrichmentResult(
        result_id="res_1", task="churn_risk", enrichment_version=1, review="suggest", provenance=provenance,
        record_id="006A1000", outputs=outputs, confidence=dict.fromkeys(outputs, 0.9),
        field_review={"churn_risk": "auto_apply", "churn_reason": "suggest"},
        review_reasons={"churn_reason": "not_grounded"}, grounding_failures=(REASON,),
    ).model_dump(mode="json")  # fmt: skip


def _record(fields: dict[str, Any]) -> dict[str, Any]:
    return {"sobject": "Opportunity", "record_id": "006A1000", "fields": fields, "changed_fields": ["Description"],
            "last_modified": "2024-05-01T09:00:00Z"}  # fmt: skip


# --- outputs --------------------------------------------------------------------------------


def test_an_enum_output_is_kept_and_a_text_output_replaced(churn: EnrichmentSpec) -> None:
    outputs = {"churn_risk": "high", "churn_reason": REASON}
    assert redact_enrichment_outputs(outputs, churn, marker=PURGED) == {"churn_risk": "high", "churn_reason": PURGED}
    assert redact_enrichment_outputs(outputs, churn, marker=ERASED, subject=ANN) == {
        "churn_risk": "high",
        "churn_reason": ERASED,
    }


def test_booleans_numbers_and_enums_stay_quotes_and_personal_outputs_go(deal: EnrichmentSpec) -> None:
    quotes = [{"text": "budget cut", "quote": "Our budget was cut."}, {"text": "new CFO", "quote": "Ann left."}]
    outputs = {"at_risk": True, "seats": 12, "evidence": quotes, "stage": "won"}
    assert redact_enrichment_outputs(outputs, deal, marker=PURGED) == {
        "at_risk": True, "seats": 12, "evidence": [{"text": PURGED, "quote": PURGED}] * 2, "stage": PURGED,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("churn_risk", "very high, says Ann"),  # not a declared value (an older spec, a hook)
        ("churn_risk", ["high"]),
        ("sentiment", "angry"),  # no such output in the spec
    ],
)
def test_what_the_spec_does_not_declare_is_free_text(churn: EnrichmentSpec, name: str, value: Any) -> None:
    assert not output_kept(churn, name, value)
    assert redact_enrichment_outputs({name: value}, churn, marker=PURGED)[name] in (PURGED, [PURGED])


def test_selected_values_stay_and_a_list_with_any_other_value_goes(deal: EnrichmentSpec) -> None:
    assert redact_enrichment_outputs({"signals": ["price", "outages"]}, deal, marker=PURGED) == {
        "signals": ["price", "outages"]
    }
    assert redact_enrichment_outputs({"signals": ["price", "Ann said so"]}, deal, marker=PURGED) == {
        "signals": [PURGED, PURGED]
    }


def test_a_value_of_another_type_than_the_spec_says_is_free_text(deal: EnrichmentSpec) -> None:
    assert redact_enrichment_outputs({"at_risk": "maybe", "seats": "a dozen"}, deal, marker=PURGED) == {
        "at_risk": PURGED,
        "seats": PURGED,
    }
    assert not output_kept(deal, "seats", True)  # a boolean is no number


def test_without_a_spec_every_string_output_is_free_text() -> None:
    assert redact_enrichment_outputs({"churn_risk": "high", "score": 0.4, "flag": True}, None, marker=PURGED) == {
        "churn_risk": PURGED,
        "score": 0.4,
        "flag": True,
    }


def test_the_subject_is_taken_out_of_a_kept_value(churn: EnrichmentSpec) -> None:
    spec = churn.model_copy(update={"outputs": {"owner": EnumOutput(type="enum", values={"ann.lee@example.com": ""})}})
    assert redact_enrichment_outputs({"owner": "ann.lee@example.com"}, spec, marker=ERASED, subject=ANN) == {
        "owner": ERASED
    }


# --- the result JSON ----------------------------------------------------------------------------


def test_the_result_json_keeps_the_same_outputs_and_everything_that_is_not_free_text(churn: EnrichmentSpec) -> None:
    result = _result({"churn_risk": "high", "churn_reason": REASON})
    purged = redact_enrichment_result(result, churn, marker=PURGED, keep_ids=True)
    assert purged == result | {
        "outputs": {"churn_risk": "high", "churn_reason": PURGED},
        "grounding_failures": [PURGED],
    }
    assert purged["field_review"] == {"churn_risk": "auto_apply", "churn_reason": "suggest"}
    assert purged["review_reasons"] == {"churn_reason": "not_grounded"} and purged["record_id"] == "006A1000"

    erased = redact_enrichment_result(result, churn, marker=ERASED, keep_ids=False, subject=ANN)
    assert erased["record_id"] == ERASED and erased["outputs"] == {"churn_risk": "high", "churn_reason": ERASED}
    assert erased["provenance"] == result["provenance"]


def test_redact_row_reads_the_rows_enrichment_and_falls_back_without_its_spec(registry: Registry) -> None:
    outputs = {"churn_risk": "high", "churn_reason": REASON}
    row: dict[str, Any] = {"task": "churn_risk", "outputs": outputs, "result": _result(outputs),
           "grounding_failures": [REASON], "subject": "006A1000", "record_id": "006A1000"}  # fmt: skip
    known = redact_row(FACT, row, marker=PURGED, keep_ids=True, enrichments=registry)
    assert known["outputs"] == {"churn_risk": "high", "churn_reason": PURGED}
    assert known["result"]["outputs"] == known["outputs"] and known["grounding_failures"] == [PURGED]
    assert "record_id" not in known  # a purge keeps the ids

    for unknown in (
        redact_row(FACT, row, marker=PURGED, keep_ids=True),  # no registry given
        redact_row(FACT, row | {"task": "lead_fit"}, marker=PURGED, keep_ids=True, enrichments=registry),
    ):
        assert unknown["outputs"] == {"churn_risk": PURGED, "churn_reason": PURGED}
        assert unknown["result"]["outputs"] == unknown["outputs"]
        assert unknown["result"]["field_review"] == row["result"]["field_review"]

    erased = redact_row(FACT, row, marker=ERASED, keep_ids=False, enrichments=[registry.get("churn_risk")])
    assert (erased["outputs"]["churn_risk"], erased["record_id"], erased["subject"]) == ("high", ERASED, ERASED)


def test_the_raw_result_event_follows_its_enrichment_too(registry: Registry) -> None:
    payload = _result({"churn_risk": "high", "churn_reason": REASON})
    row = {"type": "ai.enrichment.completed", "topic": "ai.churn_risk", "payload": payload, "subject": "006A1000"}
    assert redact_row(RAW, row, marker=PURGED, keep_ids=True, enrichments=registry)["payload"]["outputs"] == {
        "churn_risk": "high",
        "churn_reason": PURGED,
    }
    assert redact_row(RAW, row, marker=PURGED, keep_ids=True)["payload"]["outputs"]["churn_risk"] == PURGED


# --- crm.record.* source events -----------------------------------------------------------------


def test_a_record_event_loses_its_personal_inputs_and_unread_fields_and_keeps_the_rest(churn: EnrichmentSpec) -> None:
    payload = _record({"Name": "Renewal 2027", "Description": f"Ann: {REASON}", "Phone__c": "+1 415 555 0132",
                       "Amount": 5000, "IsClosed": False, "NextStep": None})  # fmt: skip
    purged = redact_record_event(payload, [churn], marker=PURGED, keep_ids=True)
    assert purged == payload | {"fields": {"Name": "Renewal 2027", "Description": PURGED, "Phone__c": PURGED,
                                           "Amount": 5000, "IsClosed": False, "NextStep": None}}  # fmt: skip
    erased = redact_record_event(payload, [churn], marker=ERASED, keep_ids=False)
    assert (erased["sobject"], erased["record_id"], erased["fields"]["Name"]) == ("Opportunity", ERASED, "Renewal 2027")


def test_a_record_event_no_spec_reads_has_every_string_field_replaced() -> None:
    payload = _record({"Name": "Renewal 2027", "Description": REASON, "Amount": 5000})
    assert redact_record_event(payload, [], marker=PURGED, keep_ids=True) == payload | {
        "fields": {"Name": PURGED, "Description": PURGED, "Amount": 5000}
    }


def test_personal_in_one_spec_wins_over_read_by_another(churn: EnrichmentSpec) -> None:
    other = churn.model_copy(update={"name": "other", "inputs": {
        "description": churn.inputs["description"].model_copy(update={"personal": False}),
        "whole": churn.inputs["name"].model_copy(update={"path": "fields"}),  # a path above a personal one
    }})  # fmt: skip
    payload = _record({"Name": "Renewal 2027", "Description": REASON, "Stage": "won"})
    assert redact_record_event(payload, [other, churn], marker=PURGED, keep_ids=True)["fields"] == {
        "Name": "Renewal 2027", "Description": PURGED, "Stage": PURGED,
    }  # fmt: skip
    assert redact_record_event(payload, [other], marker=PURGED, keep_ids=True)["fields"] == payload["fields"]


def test_redact_row_matches_record_events_by_topic_and_type(registry: Registry) -> None:
    payload = _record({"Name": "Renewal 2027", "Description": REASON})
    row = {"type": "crm.record.updated", "topic": "crm.opportunity.events", "payload": payload, "subject": "006A1000"}
    assert redact_row(RAW, row, marker=PURGED, keep_ids=True, enrichments=registry)["payload"]["fields"] == {
        "Name": "Renewal 2027",
        "Description": PURGED,
    }
    for other in ({"topic": "crm.lead.events"}, {"type": "crm.case.updated"}):  # no spec reads these
        fields = redact_row(RAW, row | other, marker=PURGED, keep_ids=True, enrichments=registry)["payload"]["fields"]
        assert fields == {"Name": PURGED, "Description": PURGED}
