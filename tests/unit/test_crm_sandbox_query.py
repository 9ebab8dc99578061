"""crm_sandbox's query execution: schema checks like Salesforce's and SOQL's comparison rules."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sandbox.errors import InvalidField, InvalidQueryFilterOperator, InvalidType, SalesforceError
from crm_sandbox.ids import make_id
from crm_sandbox.query import bind, execute, id_filter, project
from crm_sandbox.schema import default_schema
from crm_sandbox.soql import parse_soql

CASES: list[dict[str, Any]] = [
    {"Id": make_id("500", 1), "Subject": "Refund please", "Status": "New", "Priority": None,
     "LastModifiedDate": "2024-05-01T10:00:00.000+0000", "AI_Confidence__c": 0.5, "IsEscalated": True},
    {"Id": make_id("500", 2), "Subject": "LOGIN broken", "Status": "Closed", "Priority": "High",
     "LastModifiedDate": "2024-06-01T10:00:00.000+0000"},
    {"Id": make_id("500", 3), "Subject": "refund again", "Status": "Working", "Priority": "Low",
     "LastModifiedDate": "2024-04-01T10:00:00.000+0000", "AI_Confidence__c": 0.9},
]  # fmt: skip


def run(soql: str) -> list[str]:
    return [r["Id"][-4:-3] for r in execute(bind(default_schema(), parse_soql(soql)), CASES)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Status = 'new'", ["1"]),  # case-insensitive
        ("Priority != 'High'", ["1", "3"]),  # != matches null
        ("Priority = null", ["1"]),
        ("Status IN ('New', 'WORKING')", ["1", "3"]),
        ("Status NOT IN ('New')", ["2", "3"]),
        ("Subject LIKE 'refund%'", ["1", "3"]),
        ("Subject LIKE '_OGIN%'", ["2"]),
        ("LastModifiedDate > 2024-04-15T00:00:00Z", ["1", "2"]),
        ("LastModifiedDate <= 2024-05-01T12:00:00+02:00", ["1", "3"]),
        ("AI_Confidence__c >= 0.6", ["3"]),
        ("IsEscalated = false", ["2", "3"]),  # an unset boolean is false
        ("(Status = 'New' OR Status = 'Closed') AND NOT Priority = 'High'", ["1"]),
        (f"Id = '{make_id('500', 2)[:15]}'", ["2"]),  # 15-character ids match
    ],
)
def test_filters(where: str, expected: list[str]) -> None:
    assert run(f"SELECT Id FROM Case WHERE {where}") == expected


def test_order_by_nulls_limit_offset() -> None:
    assert run("SELECT Id FROM Case ORDER BY Priority") == ["1", "2", "3"]  # nulls first
    assert run("SELECT Id FROM Case ORDER BY Priority DESC") == ["3", "2", "1"]  # nulls last
    assert run("SELECT Id FROM Case ORDER BY Priority ASC NULLS LAST") == ["2", "3", "1"]
    assert run("SELECT Id FROM Case ORDER BY LastModifiedDate DESC LIMIT 2 OFFSET 1") == ["1", "3"]


def test_results_use_canonical_names_and_attributes() -> None:
    bound = bind(default_schema(), parse_soql("select subject, id, SUBJECT from case"))
    row = project(bound.sobject, bound.fields, CASES[0], "59.0")
    assert list(row) == ["attributes", "Subject", "Id"]
    assert row["attributes"] == {"type": "Case", "url": f"/services/data/v59.0/sobjects/Case/{CASES[0]['Id']}"}


def test_id_filter_pins_ids() -> None:
    one, two = make_id("500", 1), make_id("500", 2)
    schema = default_schema()
    assert id_filter(
        bind(schema, parse_soql(f"SELECT Id FROM Case WHERE Id = '{one}' AND Status = 'New'"))
    ) == frozenset({one})
    assert id_filter(bind(schema, parse_soql(f"SELECT Id FROM Case WHERE Id IN ('{one}', '{two}')"))) == frozenset(
        {one, two}
    )
    assert id_filter(bind(schema, parse_soql(f"SELECT Id FROM Case WHERE Id = '{one}' OR Status = 'New'"))) is None


@pytest.mark.parametrize(
    ("soql", "error", "message"),
    [
        ("SELECT Id FROM Ticket", InvalidType, "sObject type 'Ticket' is not supported"),
        ("SELECT Id, Bogus FROM Case", InvalidField, "No such column 'Bogus' on entity 'Case'"),
        ("SELECT Owner.Name FROM Case", InvalidField, "Didn't understand relationship 'Owner'"),
        ("SELECT Id FROM Case WHERE Description = 'x'", InvalidField, "can not be filtered"),
        ("SELECT Id FROM Case ORDER BY Description", InvalidField, "can not be sorted"),
        (
            "SELECT Id FROM Case WHERE LastModifiedDate > '2024-01-01'",
            InvalidField,
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        ("SELECT Id FROM Case WHERE Subject = 5", InvalidField, "must be of type string and should be enclosed"),
        ("SELECT Id FROM Case WHERE IsClosed = 'true'", InvalidField, "must be of type boolean"),
        ("SELECT Id FROM Case WHERE Id = 'nope'", InvalidQueryFilterOperator, "invalid ID field: nope"),
        ("SELECT Id FROM Case WHERE IsClosed LIKE 'x'", InvalidQueryFilterOperator, "invalid operator"),
    ],
)
def test_schema_errors(soql: str, error: type[SalesforceError], message: str) -> None:
    with pytest.raises(error) as exc:
        bind(default_schema(), parse_soql(soql))
    assert exc.value.status == 400
    assert message in exc.value.message
