"""crm_sandbox's write checks: the errors and normalisations a Salesforce org applies."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sandbox.errors import SalesforceError
from crm_sandbox.ids import make_id, normalize_id, to_18
from crm_sandbox.schema import default_schema
from crm_sandbox.validation import check_write
from crmpilot.tasks.taxonomy import category_names


def write(sobject: str, body: dict[str, Any], *, creating: bool = False) -> dict[str, Any]:
    schema = default_schema()
    spec = schema.get(sobject)
    assert spec is not None
    return check_write(schema, spec, body, creating=creating)


def error(sobject: str, body: dict[str, Any], *, creating: bool = False) -> SalesforceError:
    with pytest.raises(SalesforceError) as exc:
        write(sobject, body, creating=creating)
    return exc.value


def test_values_are_normalised_under_canonical_names() -> None:
    values = write(
        "Case",
        {
            "attributes": {"type": "Case"},
            "ai_category__c": category_names()[0],
            "AI_Confidence__c": "0.87456",  # number(5,4): the org rounds to its scale
            "AI_Review_Required__c": "TRUE",
            "AI_Score__c": 87,
            "AI_Summary__c": None,
        },
    )
    assert values == {
        "AI_Category__c": category_names()[0],
        "AI_Confidence__c": 0.8746,
        "AI_Review_Required__c": True,
        "AI_Score__c": 87.0,
        "AI_Summary__c": None,
    }
    assert write("EmailMessage", {"MessageDate": "2024-05-01T12:00:00+02:00"}) == {
        "MessageDate": "2024-05-01T10:00:00.000+0000"
    }
    assert write("Lead", {"NumberOfEmployees": "350"}) == {"NumberOfEmployees": 350}


@pytest.mark.parametrize(
    ("sobject", "body", "code", "fields"),
    [
        ("Case", {"Bogus__c": 1}, "INVALID_FIELD", []),
        (
            "Case",
            {"SuppliedEmail": "a@b.co", "CaseNumber": "1"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["SuppliedEmail", "CaseNumber"],
        ),
        ("Case", {"LastModifiedById": make_id("005", 1)}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["LastModifiedById"]),
        ("Case", {"AI_Category__c": "VIP"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["AI_Category__c"]),
        ("Case", {"AI_Priority__c": "urgent"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["AI_Priority__c"]),
        ("Case", {"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ("Case", {"AI_Confidence__c": 10}, "NUMBER_OUTSIDE_VALID_RANGE", ["AI_Confidence__c"]),
        ("Case", {"AI_Confidence__c": "high"}, "JSON_PARSER_ERROR", []),
        ("Case", {"AI_Review_Required__c": "yes"}, "JSON_PARSER_ERROR", []),
        ("Case", {"Subject": {"nested": 1}}, "JSON_PARSER_ERROR", []),
        ("Case", {"AccountId": "001"}, "MALFORMED_ID", ["AccountId"]),
        ("Case", {"AccountId": make_id("003", 1)}, "MALFORMED_ID", ["AccountId"]),
        ("Lead", {"Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ("Lead", {"LastName": None}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Case", {"Status": None}, "REQUIRED_FIELD_MISSING", ["Status"]),
    ],
)
def test_update_errors(sobject: str, body: dict[str, Any], code: str, fields: list[str]) -> None:
    exc = error(sobject, body)
    assert (exc.code, exc.fields, exc.status) == (code, fields, 400)


def test_create_rules() -> None:
    assert write("Case", {"SuppliedEmail": "ann@example.com"}, creating=True) == {"SuppliedEmail": "ann@example.com"}
    missing = error("Lead", {"FirstName": "Ann"}, creating=True)
    assert (missing.code, missing.fields) == ("REQUIRED_FIELD_MISSING", ["LastName", "Company"])
    assert missing.message == "Required fields are missing: [LastName, Company]"
    assert error("Case", {"IsClosed": True}, creating=True).code == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_null_clears_optional_fields_and_unsets_booleans() -> None:
    assert write("Case", {"AI_Category__c": None, "IsEscalated": None}) == {
        "AI_Category__c": None,
        "IsEscalated": False,
    }


def test_ids() -> None:
    assert to_18("001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert normalize_id("001D000000IqhSL") == normalize_id("001D000000IqhSLiaz") == "001D000000IqhSLIAZ"
    assert normalize_id("001D000000IqhSLAAA") is None  # wrong checksum
    assert normalize_id("001D000000Iqh-L") is None
    assert make_id("500", 61) == to_18("5005g000000000z")
