"""A ``multi_enum`` output and a confidence field end to end: the model's answer, the sandbox's fields, the org check.

The spec is the churn example plus ``churn_signals``, a multi-select picklist of
what the description shows. The sandbox starts with that spec folder, so it
creates ``Opportunity.Churn_Signals__c`` as a restricted multi-select picklist
of the spec's values, and refuses any other value as a real org would; the
spec also writes the risk's confidence to ``Churn_Risk_Confidence__c``.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from crm_kit import adapter, human, salesforce_settings
from sandbox_support import Sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmpilot.crm import write_back
from crmpilot.crm.writeback import AuditLog
from crmpilot.enrichments.orgcheck import org_describe, org_problems
from crmpilot.enrichments.registry import Registry, load_registry, lock_prompts
from crmpilot.events import EnrichmentResult, Envelope, RecordChanged
from crmpilot.llm import LLMInvalidOutput
from crmpilot.llm.testing import OpenAITestServer
from crmpilot.warehouse import PostgresWarehouse
from enricher.bootstrap import handler_for
from tests.handlerkit import only_result, openai_client
from tests.sfkit import first_error, sobject

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
SIGNALS = """\
  churn_signals:
    type: multi_enum
    max_items: 3
    description: what in the description points to the risk
    values:
      outages: outages, incidents, downtime, the service was unavailable
      price: too expensive, budget cut, asks for a discount
      competitor: evaluating a competitor, a rival offer, switching vendor
      support: slow or unhelpful support, unanswered tickets
"""
DESCRIPTION = (
    "Renewal discussion for 2027. The customer complained twice about outages this quarter. "
    "Their CFO said they are evaluating a competitor and may not renew the contract."
)


def _spec_text() -> str:
    text = (EXAMPLES / "churn_risk.yaml").read_text()
    text = text.replace("\nreview: {auto_apply: 0.8", f"{SIGNALS}\nreview: {{auto_apply: 0.8", 1)
    mapped = "    churn_reason: Churn_Reason__c\n"
    confidence = "  confidence_fields: {churn_risk: Churn_Risk_Confidence__c}\n"
    return text.replace(mapped, f"{mapped}    churn_signals: Churn_Signals__c\n{confidence}")


SPECS = {"churn_risk.yaml": _spec_text()}


def _opportunity(sf: Salesforce) -> str:
    account = sobject(sf, "Account").create({"Name": "Northwind"})["id"]
    created = sobject(sf, "Opportunity").create(
        {"Name": "Renewal 2027", "AccountId": account, "CloseDate": "2027-01-31", "StageName": "Qualification"}
    )
    return str(created["id"])


def _answer(signals: list[str], confidence: float = 0.9) -> dict[str, Any]:
    return {
        "churn_risk": "high",
        "churn_reason": "Their CFO said they are evaluating a competitor and may not renew the contract.",
        "churn_signals": signals,
        "confidence": {"churn_risk": 0.9, "churn_reason": 0.9, "churn_signals": confidence},
    }


def _result(
    registry: Registry, record_id: str, answer: dict[str, Any], event_id: str, at: datetime | None = None
) -> EnrichmentResult:
    """The result of a record event at ``at`` (default now), answered by the OpenAI-protocol test server."""
    event = RecordChanged(
        sobject="Opportunity", record_id=record_id, fields={"Name": "Renewal 2027", "Description": DESCRIPTION}
    )
    source = Envelope[Any](
        id=event_id, source="crm://test", type="crm.record.created", schemaversion=1, subject=record_id,
        time=at or datetime.now(UTC), data=event,
    )  # fmt: skip
    with OpenAITestServer(lambda req: answer) as server:
        handler = handler_for(registry, "churn_risk", openai_client(server))
        result = only_result(handler, source, "crm.opportunity.events")
        [request] = server.requests
    schema = request.body["response_format"]["json_schema"]["schema"]["properties"]["churn_signals"]
    assert schema["type"] == "array" and schema["items"]["enum"] == ["outages", "price", "competitor", "support"]
    assert isinstance(result, EnrichmentResult)
    return result


def test_the_selected_values_reach_the_multi_select_picklist_once_and_a_persons_edit_wins(
    sb: Sandbox, sf: Salesforce, registry: Registry, warehouse: PostgresWarehouse
) -> None:
    record = _opportunity(human(sb))
    result = _result(registry, record, _answer(["competitor", "outages", "competitor"]), "evt-signals-1")
    assert result.outputs["churn_signals"] == ("outages", "competitor")  # once each, in the vocabulary's order
    assert result.field_review["churn_signals"] == "auto_apply"

    targets = {s.name: s for s in registry}
    audit = cast(AuditLog, warehouse)
    [report] = write_back([result], adapter(sb), audit, enrichments=targets)
    assert report.status == "applied" and "Churn_Signals__c" in report.fields
    opportunity = sobject(sf, "Opportunity")
    written = opportunity.get(record)
    assert written["Churn_Signals__c"] == "outages;competitor" and written["Churn_Risk_Confidence__c"] == 0.9
    confidence = described(sf)["Churn_Risk_Confidence__c"]
    assert (confidence["type"], confidence["precision"], confidence["scale"]) == ("double", 5, 4)

    [again] = write_back([result], adapter(sb), audit, enrichments=targets)  # redelivered
    assert again.status == "already_applied"

    seen = datetime.now(UTC)  # an event the model reads before a person edits the field
    sobject(human(sb), "Opportunity").update(record, {"Churn_Signals__c": "support"})
    later = _result(registry, record, _answer(["price"]), "evt-signals-2", at=seen)
    [kept] = write_back([later], adapter(sb), audit, enrichments=targets)
    assert kept.status == "skipped_human_edit"
    assert opportunity.get(record)["Churn_Signals__c"] == "support"


def test_no_signal_writes_nothing_and_a_value_outside_the_list_is_refused(
    sb: Sandbox, registry: Registry, warehouse: PostgresWarehouse
) -> None:
    record = _opportunity(human(sb))
    none = _result(registry, record, _answer([]), "evt-signals-3")
    assert none.field_review["churn_signals"] == "skip" and none.review_reasons["churn_signals"] == "no_answer"
    [report] = write_back([none], adapter(sb), cast(AuditLog, warehouse), enrichments={s.name: s for s in registry})
    assert report.status == "applied" and "Churn_Signals__c" not in report.fields

    with pytest.raises(LLMInvalidOutput):
        _result(registry, record, _answer(["outages", "lawsuit"]), "evt-signals-4")


def described(sf: Salesforce) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in sobject(sf, "Opportunity").describe()["fields"]}


def test_the_sandbox_keeps_the_picklist_order_and_refuses_what_the_org_would(sb: Sandbox, sf: Salesforce) -> None:
    signals = described(sf)["Churn_Signals__c"]
    assert (signals["type"], signals["restrictedPicklist"], signals["length"]) == ("multipicklist", True, 4099)
    assert not signals["sortable"] and not signals["groupable"]
    assert [v["value"] for v in signals["picklistValues"]] == ["outages", "price", "competitor", "support"]

    record = _opportunity(human(sb))
    opportunity = sobject(sf, "Opportunity")
    opportunity.update(record, {"Churn_Signals__c": "support;outages;support"})
    assert opportunity.get(record)["Churn_Signals__c"] == "outages;support"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        opportunity.update(record, {"Churn_Signals__c": "outages;lawsuit"})
    error = first_error(refused.value)
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and error["fields"] == ["Churn_Signals__c"]


def test_the_org_check_names_a_value_the_picklist_lacks_and_a_field_of_the_wrong_type(
    sb: Sandbox, spec_dir: Path, tmp_path: Path
) -> None:
    describe = org_describe(salesforce_settings(sb))
    assert org_problems(load_registry([spec_dir]).entry("churn_risk"), describe) == []

    shutil.copy(spec_dir / "churn_risk.yaml", tmp_path / "churn_risk.yaml")
    path = tmp_path / "churn_risk.yaml"
    path.write_text(path.read_text().replace("      support: slow", "      legal: a lawyer wrote\n      support: slow"))
    lock_prompts(load_registry([tmp_path]))
    [missing] = org_problems(load_registry([tmp_path]).entry("churn_risk"), describe)
    lines = path.read_text().splitlines()
    assert missing.line == lines.index("      legal: a lawyer wrote") + 1
    assert "the picklist Opportunity.Churn_Signals__c has no active value 'legal'" in missing.reason

    path.write_text(
        path.read_text()
        .replace("churn_signals: Churn_Signals__c", "churn_signals: StageName")
        .replace("churn_risk: Churn_Risk_Confidence__c", "churn_risk: Name")
    )
    lock_prompts(load_registry([tmp_path]))
    problems = org_problems(load_registry([tmp_path]).entry("churn_risk"), describe)
    assert [p.reason for p in problems] == [
        "crm.fields.churn_signals: Opportunity.StageName is picklist; a multi_enum needs a multi-select picklist",
        "crm.confidence_fields.churn_risk: Opportunity.Name is string(120); a confidence (0 to 1) needs a number field",
    ]


def test_soql_on_a_multi_select_picklist_behaves_as_an_orgs(sb: Sandbox, sf: Salesforce) -> None:
    record = _opportunity(human(sb))
    sobject(sf, "Opportunity").update(record, {"Churn_Signals__c": "competitor;outages"})
    found = sf.query(f"SELECT Id FROM Opportunity WHERE Churn_Signals__c = 'competitor;outages' AND Id = '{record}'")
    assert [r["Id"] for r in found["records"]] == [record]  # stored as outages;competitor: the order does not matter
    other = _opportunity(human(sb))  # nothing selected
    for where, hits in (
        ("Churn_Signals__c INCLUDES ('outages')", [record]),
        ("Churn_Signals__c INCLUDES ('price', 'competitor')", [record]),  # , is OR
        ("Churn_Signals__c INCLUDES ('outages;competitor')", [record]),  # ; is AND
        ("Churn_Signals__c INCLUDES ('outages;price')", []),
        ("Churn_Signals__c EXCLUDES ('price')", [record, other]),
        ("Churn_Signals__c EXCLUDES ('support', 'competitor')", [other]),
    ):
        found = sf.query(f"SELECT Id FROM Opportunity WHERE {where} AND Id IN ('{record}', '{other}')")
        assert sorted(r["Id"] for r in found["records"]) == sorted(hits), where
    for soql, code in (
        ("SELECT Id FROM Opportunity WHERE Churn_Signals__c LIKE 'out%'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Opportunity WHERE StageName INCLUDES ('Qualification')", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Opportunity ORDER BY Churn_Signals__c", "INVALID_FIELD"),
    ):
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.query(soql)
        assert first_error(refused.value)["errorCode"] == code
