"""crm_sandbox driven by the real simple-salesforce client over HTTPS, on a real PostgreSQL.

The sandbox runs in-process (uvicorn in a thread, TLS with a fresh CA) on a
free 127.0.0.1 port, in its own database schema that is dropped afterwards;
every test starts from `/__sandbox/reset`. PostgreSQL comes from
CRMPILOT_DATABASE_URL (default: the local stack's, started by infra/stack.sh).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_support import BATCH_SIZE, Sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crm_sandbox.org import AGENT_USER, INTEGRATION_USER
from crmpilot.tasks.taxonomy import category_names
from tests.sfkit import first_error, sobject

pytestmark = pytest.mark.integration


def _error_code(exc: pytest.ExceptionInfo[SalesforceError]) -> str:
    return str(first_error(exc.value)["errorCode"])


def _create_case(sf: Salesforce, **fields: Any) -> str:
    result = sobject(sf, "Case").create({"Subject": "Printer on fire", "Origin": "Web", **fields})
    assert result["success"] is True and result["errors"] == []
    return str(result["id"])


def test_create_get_update_delete(sf: Salesforce) -> None:
    case_id = _create_case(sf, SuppliedEmail="ann@example.com")
    assert len(case_id) == 18 and case_id.startswith("500")

    case = sobject(sf, "Case").get(case_id)
    assert case["attributes"]["type"] == "Case"
    assert case["Subject"] == "Printer on fire"
    assert case["Status"] == "New" and case["Priority"] == "Medium"  # picklist defaults
    assert case["CaseNumber"] and case["IsClosed"] is False
    assert case["CreatedById"] == case["LastModifiedById"] == INTEGRATION_USER.id
    assert case["AI_Category__c"] is None

    status = sobject(sf, "Case").update(case_id, {"AI_Category__c": "Technical Issue", "AI_Confidence__c": 0.87349})
    assert status == 204
    updated = sobject(sf, "Case").get(case_id[:15])  # 15-character ids work too
    assert updated["AI_Category__c"] == "Technical Issue"
    assert updated["AI_Confidence__c"] == 0.8735  # number(5, 4) rounds
    assert updated["LastModifiedDate"] >= case["LastModifiedDate"]
    sf.query("SELECT COUNT() FROM Case")
    assert sf.api_usage["api-usage"].used >= 5

    assert sobject(sf, "Case").delete(case_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sobject(sf, "Case").get(case_id)
    assert _error_code(deleted) == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sobject(sf, "Case").get("500" + "5g" + "0" + "999999999")
    assert _error_code(missing) == "NOT_FOUND"


def test_query_pages_through_next_records_url(sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Lead"}, "LastName": f"Lead {i:02d}", "Company": "Acme"} for i in range(12)]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert results is not None
    assert [r["success"] for r in results] == [True] * 12

    first = sf.query("SELECT Id, LastName FROM Lead WHERE Company = 'acme' ORDER BY LastName DESC")
    assert first["totalSize"] == 12 and first["done"] is False and len(first["records"]) == BATCH_SIZE
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")

    everything = sf.query_all("SELECT Id, LastName FROM Lead WHERE Company = 'acme' ORDER BY LastName DESC")
    names = [r["LastName"] for r in everything["records"]]
    assert names == [f"Lead {i:02d}" for i in reversed(range(12))]

    count = sf.query("SELECT COUNT() FROM Lead WHERE LastName LIKE 'Lead 0%'")
    assert count["totalSize"] == 10 and count["records"] == []


def test_query_filters_on_last_modified_date(sf: Salesforce) -> None:
    old = _create_case(sf)
    since = datetime.now(UTC) + timedelta(milliseconds=5)
    while datetime.now(UTC) <= since:
        pass
    new = _create_case(sf, Subject="Later")
    literal = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    soql = f"SELECT Id FROM Case WHERE LastModifiedDate > {literal} AND Status IN ('New', 'Working')"
    assert [r["Id"] for r in sf.query_all(soql)["records"]] == [new]
    assert old != new


def test_malformed_and_invalid_queries(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Case WHERE")
    assert _error_code(malformed) == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as invalid:
        sf.query("SELECT Id, Bogus__c FROM Case")
    assert _error_code(invalid) == "INVALID_FIELD"


def test_describe_lists_restricted_picklist_values(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sobject(sf, "Case").describe()["fields"]}
    category = fields["AI_Category__c"]
    assert category["type"] == "picklist" and category["restrictedPicklist"] is True and category["custom"] is True
    assert [v["value"] for v in category["picklistValues"]] == list(category_names())
    assert [v["value"] for v in fields["AI_Priority__c"]["picklistValues"]] == ["Low", "Medium", "High", "Urgent"]
    assert fields["AI_Summary__c"]["length"] == 32000
    assert fields["SuppliedEmail"]["updateable"] is False and fields["SuppliedEmail"]["createable"] is True
    assert fields["LastModifiedById"]["updateable"] is False
    assert sobject(sf, "Lead").describe()["keyPrefix"] == "00Q"


def test_field_errors_are_faithful(sf: Salesforce) -> None:
    case_id = _create_case(sf, SuppliedEmail="ann@example.com")
    cases: dict[str, dict[str, Any]] = {
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": {"AI_Category__c": "VIP Escalation"},
        "STRING_TOO_LONG": {"Subject": "x" * 256},
        "INVALID_FIELD_FOR_INSERT_UPDATE": {"SuppliedEmail": "eve@example.com"},
        "INVALID_FIELD": {"NoSuchField__c": 1},
        "NUMBER_OUTSIDE_VALID_RANGE": {"AI_Confidence__c": 87},
    }
    for code, body in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sobject(sf, "Case").update(case_id, body)
        assert exc.value.status == 400
        assert _error_code(exc) == code, body
    assert first_error(exc.value)["fields"] == ["AI_Confidence__c"]
    assert sobject(sf, "Case").get(case_id)["AI_Category__c"] is None


def test_composite_update_reports_each_record(sf: Salesforce) -> None:
    good, bad = _create_case(sf), _create_case(sf)
    missing = "500" + "5g" + "0" + "000000zzz"
    records = [
        {"attributes": {"type": "Case"}, "id": good, "AI_Priority__c": "Urgent"},
        {"attributes": {"type": "Case"}, "id": bad, "AI_Priority__c": "Whenever"},
        {"attributes": {"type": "Case"}, "id": missing, "AI_Priority__c": "Low"},
        {"attributes": {"type": "Case"}, "AI_Priority__c": "Low"},
    ]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert results is not None
    assert results[0] == {"id": good, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[2]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert results[3]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert sobject(sf, "Case").get(good)["AI_Priority__c"] == "Urgent"

    records[0]["AI_Priority__c"] = "High"
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records[:2]})
    assert results is not None
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sobject(sf, "Case").get(good)["AI_Priority__c"] == "Urgent"  # rolled back

    fetched = sf.restful(f"composite/sobjects/Case?ids={good},{missing}&fields=Id,AI_Priority__c")
    assert fetched is not None
    assert fetched[0]["AI_Priority__c"] == "Urgent" and fetched[1] is None


def test_bad_token_gets_invalid_session_id(sb: Sandbox) -> None:
    with pytest.raises(SalesforceExpiredSession) as exc:
        sobject(sb.client("not-a-session"), "Case").describe()
    assert exc.value.status == 401
    assert _error_code(exc) == "INVALID_SESSION_ID"


def test_request_limit_exceeded_fault(sb: Sandbox, sf: Salesforce) -> None:
    sf.limits()
    assert sf.api_usage["api-usage"].total == sb.settings.api_daily_limit
    sb.admin("POST", "faults", json={"limit_exceeded": True})
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Case")
    assert exc.value.status == 403
    assert _error_code(exc) == "REQUEST_LIMIT_EXCEEDED"
    sb.admin("DELETE", "faults")
    assert sf.query("SELECT Id FROM Case")["totalSize"] == 0


def test_lock_row_fault_fails_the_next_writes(sb: Sandbox, sf: Salesforce) -> None:
    case_id = _create_case(sf)
    sb.admin("POST", "faults", json={"lock_row_errors": 1})
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sobject(sf, "Case").update(case_id, {"AI_Sentiment__c": "negative"})
    assert _error_code(exc) == "UNABLE_TO_LOCK_ROW"
    assert sobject(sf, "Case").update(case_id, {"AI_Sentiment__c": "negative"}) == 204


def test_human_edit_changes_last_modified_by_and_origin_is_recorded(sb: Sandbox, sf: Salesforce) -> None:
    case_id = _create_case(sf)
    sobject(sf, "Case").update(
        case_id, {"AI_Summary__c": "Printer burns."}, headers={"Sforce-Call-Options": "client=crmpilot"}
    )
    human = sb.client(sb.settings.human_session_token.get_secret_value())
    sobject(human, "Case").update(case_id, {"Priority": "High"})

    row = sf.query(f"SELECT LastModifiedById, Priority FROM Case WHERE Id = '{case_id}'")["records"][0]
    assert row["LastModifiedById"] == AGENT_USER.id and row["Priority"] == "High"

    updates = [c["payload"] for c in sb.changes() if c["payload"]["ChangeEventHeader"]["changeType"] == "UPDATE"]
    ours, theirs = (u["ChangeEventHeader"] for u in updates)
    assert ours["changeOrigin"].endswith("client=crmpilot") and ours["commitUser"] == INTEGRATION_USER.id
    assert "AI_Summary__c" in ours["changedFields"]
    assert "client=" not in theirs["changeOrigin"] and theirs["commitUser"] == AGENT_USER.id
    assert updates[1]["Priority"] == "High"


def test_oauth_logins_and_expired_sessions(sb: Sandbox) -> None:
    secret = sb.settings.client_secret.get_secret_value()
    password_login = Salesforce(
        username="integration@crmpilot.sandbox",
        password=sb.settings.user_password.get_secret_value(),
        consumer_key=sb.settings.client_id,
        consumer_secret=secret,
        session=sb.session(),
    )
    assert password_login.base_url.startswith(sb.url)
    client_credentials = Salesforce(
        consumer_key=sb.settings.client_id,
        consumer_secret=secret,
        domain="crmpilot-sandbox.my",
        session=sb.session(),
    )
    fixed_token = sb.client()
    for sf in (password_login, client_credentials, fixed_token):
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 3

    sb.admin("POST", "faults", json={"expire_sessions": True})
    old_token = password_login.session_id
    assert password_login.query("SELECT COUNT() FROM User")["totalSize"] == 3  # logs in again by itself
    assert password_login.session_id != old_token
    with pytest.raises(SalesforceExpiredSession):
        fixed_token.query("SELECT COUNT() FROM User")


def test_demo_seed_is_deterministic(sb: Sandbox, sf: Salesforce) -> None:
    first = sb.admin("POST", "seed", json={"dataset": "demo"})
    assert first["created"] > 20
    assert sb.admin("POST", "seed")["created"] == 0
    cases = sf.query_all("SELECT Id, Subject, OwnerId FROM Case ORDER BY CaseNumber")["records"]
    assert len(cases) == 20 and cases[0]["Id"].startswith("500DM")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 5
