"""crm_sandbox's HTTP behaviour on the in-memory store: paths, sessions, limits, faults, admin."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from crm_sandbox.app import create_app
from crm_sandbox.memstore import MemoryStore
from crm_sandbox.org import AGENT_USER, INTEGRATION_USER
from crm_sandbox.settings import SandboxSettings

TOKEN = "unit-integration-token"
HUMAN = "unit-human-token"
DATA = "/services/data/v59.0"


@pytest.fixture
def settings() -> SandboxSettings:
    return SandboxSettings(session_token=SecretStr(TOKEN), human_session_token=SecretStr(HUMAN), api_daily_limit=50)


@pytest.fixture
def client(settings: SandboxSettings) -> Iterator[TestClient]:
    with TestClient(create_app(MemoryStore(), settings), base_url="https://testserver") as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def create_case(client: TestClient, **fields: Any) -> str:
    response = client.post(f"{DATA}/sobjects/Case/", json={"Subject": "Help", **fields})
    assert response.status_code == 201, response.text
    assert response.json()["success"] is True
    return str(response.json()["id"])


def test_paths_with_and_without_slash_and_percent_encoding(client: TestClient) -> None:
    case_id = create_case(client)
    for path in (f"sobjects/Case/{case_id}", f"sobjects/Case/{case_id}/", f"sobjects/%43ase/{case_id}"):
        response = client.get(f"{DATA}/{path}")
        assert response.status_code == 200 and response.json()["Id"] == case_id
    assert client.get(f"{DATA}/query", params={"q": "SELECT Id FROM Case"}).json()["totalSize"] == 1
    assert client.get(f"{DATA}/sobjects/Case/{case_id}", params={"fields": "Subject"}).json() == {
        "attributes": {"type": "Case", "url": f"{DATA}/sobjects/Case/{case_id}"},
        "Subject": "Help",
    }


def test_unknown_paths_and_methods_answer_in_salesforce_form(client: TestClient) -> None:
    unknown = client.get(f"{DATA}/sobjects/Ticket/describe")
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"
    assert client.get(f"{DATA}/no/such/thing").json()[0]["errorCode"] == "NOT_FOUND"
    wrong = client.put(f"{DATA}/sobjects/Case/")
    assert wrong.status_code == 405 and wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    bad_json = client.post(f"{DATA}/sobjects/Case/", content=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_missing_or_bad_token_is_401_and_not_counted(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
        response = client.get(f"{DATA}/limits", headers=headers)
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
        ]
        assert response.headers["Sforce-Limit-Info"] == "api-usage=0/50"


def test_daily_limit_is_enforced(settings: SandboxSettings) -> None:
    limited = settings.model_copy(update={"api_daily_limit": 2})
    with TestClient(create_app(MemoryStore(), limited), base_url="https://testserver") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        assert [client.get(f"{DATA}/limits").headers["Sforce-Limit-Info"] for _ in range(2)] == [
            "api-usage=1/2",
            "api-usage=2/2",
        ]
        refused = client.get(f"{DATA}/limits")
        assert refused.status_code == 403
        assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/2"


def test_writes_track_the_calling_user(client: TestClient) -> None:
    case_id = create_case(client)
    response = client.patch(
        f"{DATA}/sobjects/Case/{case_id}", json={"Status": "Closed"}, headers={"Authorization": f"Bearer {HUMAN}"}
    )
    assert response.status_code == 204 and response.content == b""
    case = client.get(f"{DATA}/sobjects/Case/{case_id}").json()
    assert case["CreatedById"] == INTEGRATION_USER.id and case["LastModifiedById"] == AGENT_USER.id
    assert case["IsClosed"] is True and case["ClosedDate"] == case["LastModifiedDate"]


def test_collections(client: TestClient) -> None:
    too_many = {"records": [{"attributes": {"type": "Case"}, "Subject": "x"}] * 201}
    response = client.post(f"{DATA}/composite/sobjects", json=too_many)
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"

    created = client.post(
        f"{DATA}/composite/sobjects",
        json={"allOrNone": False, "records": [
            {"attributes": {"type": "Case"}, "Subject": "ok"},
            {"attributes": {"type": "Case"}, "Subject": "x" * 300},
            {"Subject": "no type"},
            {"attributes": {"type": "Case"}, "Id": "5005g0000000001AAA", "Subject": "with id"},
        ]},
    ).json()  # fmt: skip
    assert created[0]["success"] is True and created[0]["id"].startswith("500")
    assert [r["errors"][0]["statusCode"] for r in created[1:]] == ["STRING_TOO_LONG", "INVALID_TYPE", "INVALID_FIELD"]
    assert all("id" not in r for r in created[1:])


def test_only_draft_emails_change_standard_fields(client: TestClient) -> None:
    case_id = create_case(client)
    email = client.post(
        f"{DATA}/sobjects/EmailMessage", json={"ParentId": case_id, "Subject": "Hi", "Status": "3"}
    ).json()["id"]
    refused = client.patch(f"{DATA}/sobjects/EmailMessage/{email}", json={"Subject": "Edited"})
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    accepted = client.patch(f"{DATA}/sobjects/EmailMessage/{email}", json={"AI_Summary__c": "Greeting.", "Status": "1"})
    assert accepted.status_code == 204
    orphan = client.post(f"{DATA}/sobjects/EmailMessage", json={"ParentId": "5005g000000zzzzAAA"[:15]})
    assert orphan.json()[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_query_locator_errors(client: TestClient) -> None:
    response = client.get(f"{DATA}/query/01gdeadbeef-2000")
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert client.get(f"{DATA}/query/").json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_oauth_token_endpoint(client: TestClient, settings: SandboxSettings) -> None:
    form = {
        "grant_type": "password",
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        "username": AGENT_USER.username,
        "password": settings.user_password.get_secret_value(),
    }
    granted = client.post("/services/oauth2/token", data=form, headers={"Authorization": ""}).json()
    assert granted["instance_url"] == "https://testserver" and granted["id"].endswith(AGENT_USER.id)
    me = client.get("/services/oauth2/userinfo", headers={"Authorization": f"Bearer {granted['access_token']}"})
    assert me.json()["user_id"] == AGENT_USER.id

    wrong = client.post("/services/oauth2/token", data={**form, "password": "guess"}, headers={"Authorization": ""})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    basic = base64.b64encode(f"{settings.client_id}:wrong".encode()).decode()
    wrong_client = client.post(
        "/services/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert wrong_client.json()["error"] == "invalid_client"
    assert (
        client.post("/services/oauth2/token", data={"grant_type": "implicit"}).json()["error"]
        == "unsupported_grant_type"
    )


def test_faults_and_reset(client: TestClient) -> None:
    case_id = create_case(client)
    assert client.post("/__sandbox/faults", json={"lock_row_errors": -1}).status_code == 400
    assert client.post("/__sandbox/faults", json={"bogus": True}).status_code == 400
    state = client.post("/__sandbox/faults", json={"lock_row_errors": 2, "expire_sessions": True}).json()
    assert state == {"limit_exceeded": False, "lock_row_errors": 2, "expire_sessions": True, "latency_ms": 0}
    assert client.get(f"{DATA}/limits").status_code == 401
    client.delete("/__sandbox/faults")
    assert client.get("/__sandbox/faults").json()["lock_row_errors"] == 0
    assert client.patch(f"{DATA}/sobjects/Case/{case_id}", json={"Subject": "x"}).status_code == 204

    client.post("/__sandbox/faults", json={"lock_row_errors": 1})
    locked = client.patch(f"{DATA}/sobjects/Case/{case_id}", json={"Subject": "y"})
    assert locked.status_code == 400 and locked.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"

    assert client.post("/__sandbox/reset").json() == {"status": "reset"}
    assert client.get(f"{DATA}/sobjects/Case/{case_id}").status_code == 404
    assert client.get(f"{DATA}/query", params={"q": "SELECT COUNT() FROM User"}).json()["totalSize"] == 3


def test_changes_feed_has_cdc_shape(client: TestClient) -> None:
    case_id = create_case(client)
    client.patch(
        f"{DATA}/sobjects/Case/{case_id}",
        json={"AI_Priority__c": "High"},
        headers={"Sforce-Call-Options": "client=crmpilot, defaultNamespace=x"},
    )
    client.delete(f"{DATA}/sobjects/Case/{case_id}")
    events = client.get("/__sandbox/changes", params={"after": 0}).json()
    headers = [e["payload"]["ChangeEventHeader"] for e in events]
    assert [h["changeType"] for h in headers] == ["CREATE", "UPDATE", "DELETE"]
    assert headers[1]["changeOrigin"] == "com/salesforce/api/rest/59.0;client=crmpilot"
    assert set(headers[1]["changedFields"]) == {"AI_Priority__c", "LastModifiedDate", "SystemModstamp"}
    assert events[1]["payload"]["AI_Priority__c"] == "High" and "Subject" not in events[1]["payload"]
    assert [e["event"]["replayId"] for e in events] == [1, 2, 3]
    assert client.get("/__sandbox/changes", params={"after": 2}).json()[0]["event"]["replayId"] == 3
    assert client.post("/__sandbox/seed", json={"dataset": "demo"}).json()["created"] > 20
