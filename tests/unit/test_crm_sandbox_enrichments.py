"""crm_sandbox serves what the enrichment specs write: their custom fields, their picklist values, the Opportunity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from crm_sandbox.app import create_app
from crm_sandbox.memstore import MemoryStore
from crm_sandbox.schema import default_schema, org_schema, schema_for
from crm_sandbox.settings import SandboxSettings
from crmpilot.enrichments.registry import load_registry
from crmpilot.enrichments.spec import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "enrichments"
TOKEN = "unit-integration-token"
DATA = "/services/data/v59.0"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The sandbox app started with CRMPILOT_ENRICHMENTS_DIR=examples/enrichments."""
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    settings = SandboxSettings(session_token=SecretStr(TOKEN), human_session_token=SecretStr("unit-human-token"))
    with TestClient(create_app(MemoryStore(), settings), base_url="https://testserver") as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def _described(client: TestClient, sobject: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"{DATA}/sobjects/{sobject}/describe")
    assert response.status_code == 200, response.text
    return {f["name"]: f for f in response.json()["fields"]}


def _values(field: dict[str, Any]) -> list[str]:
    return [v["value"] for v in field["picklistValues"]]


def test_example_specs_add_their_fields_and_values() -> None:
    schema = schema_for(load_registry([EXAMPLES]))

    opportunity = schema.get("Opportunity")
    assert opportunity is not None
    churn = opportunity.field("Churn_Risk__c")
    assert churn is not None and churn.custom
    assert (churn.type, churn.picklist, churn.restricted) == ("picklist", ("low", "medium", "high"), True)
    reason = opportunity.field("Churn_Reason__c")
    assert reason is not None and (reason.type, reason.length) == ("string", 255)
    result_id = opportunity.field("AI_Churn_Result_Id__c")
    assert result_id is not None and (result_id.type, result_id.length) == ("string", 255)
    review = opportunity.field("AI_Churn_Review_Required__c")
    assert review is not None and review.type == "boolean"

    case = schema.get("Case")
    assert case is not None
    case_reason = case.field("Reason")
    assert case_reason is not None and not case_reason.custom  # the standard field, not a new one
    assert case_reason.picklist == (
        "Billing", "Payment", "Refund", "Login", "Performance", "Shipping", "Cancellation", "Data Privacy", "Other",
    )  # fmt: skip
    assert case_reason.restricted
    case_type = case.field("Type")
    assert (
        case_type is not None
        and case_type.picklist == ("Question", "Problem", "Feature Request")
        and case_type.restricted
    )
    assert case.field("AI_Type_Result_Id__c") is not None and case.field("AI_Type_Review_Required__c") is not None
    # what no spec targets is left as it was
    assert schema.get("Lead") == default_schema().get("Lead")
    assert case.field("Origin") == default_schema().get("Case").field("Origin")  # type: ignore[union-attr]  # the default schema has these objects


def test_without_specs_the_schema_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR", raising=False)
    # the built-in score_request spec is always loaded: the default Lead already has every field it writes
    assert org_schema() == default_schema()
    assert schema_for(load_registry([])) == default_schema()
    lead = default_schema().get("Lead")
    target = load_registry([]).get("score_request").crm
    assert lead is not None and target is not None
    for name in (*target.fields.values(), *target.confidence_fields.values(), target.result_id_field,
                 target.review_field, target.trace_field):  # fmt: skip
        assert name is not None and lead.field(name) is not None, name
    assert schema_for(None) is default_schema()
    assert schema_for(load_registry([], builtin=False)) is default_schema()
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_BUILTIN", "false")
    assert org_schema() is default_schema()
    assert default_schema().get("Opportunity").field("Churn_Risk__c") is None  # type: ignore[union-attr]  # the default schema has these objects


def test_a_spec_for_an_object_the_sandbox_lacks_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (EXAMPLES / "churn_risk.yaml").read_text().replace("object: Opportunity", "object: Invoice__c")
    (tmp_path / "churn_risk.yaml").write_text(text)
    registry = load_registry([], files=[tmp_path / "churn_risk.yaml"])
    with pytest.raises(SpecError) as refused:
        schema_for(registry)
    [problem] = refused.value.problems
    assert problem.line == text.splitlines().index("  object: Invoice__c") + 1
    assert "Invoice__c" in problem.reason and "Opportunity" in problem.reason


def test_describe_shows_the_enrichment_fields(client: TestClient) -> None:
    opportunity = _described(client, "Opportunity")
    churn = opportunity["Churn_Risk__c"]
    assert (churn["type"], churn["custom"], churn["restrictedPicklist"], churn["updateable"]) == (
        "picklist",
        True,
        True,
        True,
    )
    assert _values(churn) == ["low", "medium", "high"]
    assert opportunity["AI_Churn_Review_Required__c"]["type"] == "boolean"
    stage = opportunity["StageName"]
    assert stage["nillable"] is False and [v["value"] for v in stage["picklistValues"] if v["defaultValue"]] == [
        "Prospecting"
    ]
    assert (opportunity["IsWon"]["updateable"], opportunity["IsClosed"]["createable"]) == (False, False)
    case = _described(client, "Case")
    assert _values(case["Reason"])[:3] == ["Billing", "Payment", "Refund"] and case["Reason"]["restrictedPicklist"]
    assert "Opportunity" in [s["name"] for s in client.get(f"{DATA}/sobjects").json()["sobjects"]]


def test_a_value_outside_the_spec_picklist_is_refused(client: TestClient) -> None:
    account = client.post(f"{DATA}/sobjects/Account/", json={"Name": "Northwind"}).json()["id"]
    created = client.post(
        f"{DATA}/sobjects/Opportunity/",
        json={
            "Name": "Renewal 2027",
            "AccountId": account,
            "CloseDate": "2027-01-31",
            "StageName": "Qualification",
            "Amount": 12000.5,
        },
    )
    assert created.status_code == 201, created.text
    opp = created.json()["id"]
    assert opp.startswith("006")

    ok = client.patch(
        f"{DATA}/sobjects/Opportunity/{opp}", json={"Churn_Risk__c": "high", "AI_Churn_Result_Id__c": "r-1"}
    )
    assert ok.status_code == 204, ok.text
    refused = client.patch(f"{DATA}/sobjects/Opportunity/{opp}", json={"Churn_Risk__c": "critical"})
    assert refused.status_code == 400
    [error] = refused.json()
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and error["fields"] == ["Churn_Risk__c"]
    assert client.get(f"{DATA}/sobjects/Opportunity/{opp}").json()["Churn_Risk__c"] == "high"

    case = client.post(f"{DATA}/sobjects/Case/", json={"Subject": "Charged twice"}).json()["id"]
    assert client.patch(f"{DATA}/sobjects/Case/{case}", json={"Reason": "Billing"}).status_code == 204
    standard_value = client.patch(f"{DATA}/sobjects/Case/{case}", json={"Reason": "Installation"})
    assert standard_value.status_code == 400
    assert standard_value.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_opportunity_dates_amounts_and_closed_stages(client: TestClient) -> None:
    missing = client.post(f"{DATA}/sobjects/Opportunity/", json={"Name": "No stage"})
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert set(missing.json()[0]["fields"]) == {"StageName", "CloseDate"}
    bad_date = client.post(
        f"{DATA}/sobjects/Opportunity/", json={"Name": "x", "StageName": "Prospecting", "CloseDate": "soon"}
    )
    assert bad_date.status_code == 400 and bad_date.json()[0]["errorCode"] == "JSON_PARSER_ERROR"

    opp = client.post(
        f"{DATA}/sobjects/Opportunity/",
        json={
            "Name": "Upsell",
            "StageName": "Prospecting",
            "CloseDate": "2027-03-01",
            "Amount": "99.999",
            "Probability": 10,
        },
    ).json()["id"]
    record = client.get(f"{DATA}/sobjects/Opportunity/{opp}").json()
    assert (record["Amount"], record["Probability"], record["CloseDate"]) == (100.0, 10.0, "2027-03-01")
    assert (record["IsClosed"], record["IsWon"]) == (False, False)
    assert client.patch(f"{DATA}/sobjects/Opportunity/{opp}", json={"StageName": "Closed Won"}).status_code == 204
    record = client.get(f"{DATA}/sobjects/Opportunity/{opp}").json()
    assert (record["IsClosed"], record["IsWon"]) == (True, True)
    won = client.get(
        f"{DATA}/query", params={"q": "SELECT Id FROM Opportunity WHERE IsWon = true AND CloseDate < 2027-06-01"}
    )
    assert won.json()["totalSize"] == 1


def test_a_confidence_field_needs_four_decimals_and_the_sandbox_makes_one(tmp_path: Path) -> None:
    from dataclasses import replace

    from crm_sandbox.schema import Schema, describe_sobject
    from crmpilot.enrichments.orgcheck import org_problems
    from crmpilot.enrichments.registry import lock_prompts

    text = (EXAMPLES / "churn_risk.yaml").read_text()
    text = text.replace(
        "  result_id_field:", "  confidence_fields: {churn_risk: Churn_Risk_Confidence__c}\n  result_id_field:"
    )
    (tmp_path / "churn_risk.yaml").write_text(text)
    lock_prompts(load_registry([tmp_path]))
    entry = load_registry([tmp_path]).entry("churn_risk")
    schema = schema_for(load_registry([tmp_path]))
    opportunity = schema.get("Opportunity")
    assert opportunity is not None

    def describe(sobject_schema: Schema) -> Any:
        return lambda name: describe_sobject(sobject_schema.get(name), "59.0") if sobject_schema.get(name) else None  # type: ignore[arg-type]  # checked in the conditional

    assert org_problems(entry, describe(schema)) == []
    field = opportunity.field("Churn_Risk_Confidence__c")
    assert field is not None
    rounded = replace(opportunity, fields=tuple(replace(f, scale=0) if f is field else f for f in opportunity.fields))
    [problem] = org_problems(
        entry, describe(Schema(tuple(rounded if s is opportunity else s for s in schema.sobjects)))
    )
    assert problem.line == text.splitlines().index("  confidence_fields: {churn_risk: Churn_Risk_Confidence__c}") + 1
    assert "is number(5, 0); a confidence needs 4 decimals" in problem.reason
