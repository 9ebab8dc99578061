"""crm_sandbox's SOQL parser: the supported subset, and MALFORMED_QUERY where Salesforce says so."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from crm_sandbox.errors import MalformedQuery
from crm_sandbox.soql import And, Comparison, Not, Or, OrderBy, Query, Value, parse_soql


def test_full_query() -> None:
    query = parse_soql(
        "SELECT Id, Subject FROM Case WHERE Status = 'New' AND Priority IN ('High', 'Low') "
        "AND LastModifiedDate > 2024-05-01T10:00:00Z ORDER BY LastModifiedDate DESC, Id LIMIT 10 OFFSET 5"
    )
    assert query == Query(
        fields=("Id", "Subject"),
        sobject="Case",
        where=And(
            (
                Comparison("Status", "=", "New"),
                Comparison("Priority", "IN", ("High", "Low")),
                Comparison("LastModifiedDate", ">", datetime(2024, 5, 1, 10, tzinfo=UTC)),
            )
        ),
        order_by=(OrderBy("LastModifiedDate", True, True), OrderBy("Id", False, False)),
        limit=10,
        offset=5,
    )


def test_keywords_are_case_insensitive_and_count_has_no_fields() -> None:
    query = parse_soql("select count() from lead where isconverted = false")
    assert query.is_count and query.sobject == "lead"
    assert query.where == Comparison("isconverted", "=", False)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it\\'s'", "it's"),
        ("'a\\nb'", "a\nb"),
        ("null", None),
        ("TRUE", True),
        ("-12.50", Decimal("-12.50")),
        ("2024-05-01", date(2024, 5, 1)),
        ("2024-05-01T12:00:00.000+0200", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ],
)
def test_literals(literal: str, value: Value) -> None:
    assert parse_soql(f"SELECT Id FROM Case WHERE X = {literal}").where == Comparison("X", "=", value)


def test_like_not_in_not_and_parentheses() -> None:
    query = parse_soql(
        "SELECT Id FROM Case WHERE (Subject LIKE '50\\%%' OR Origin NOT IN ('Web')) AND NOT IsClosed = true"
    )
    assert query.where == And(
        (
            Or((Comparison("Subject", "LIKE", "50\\%%"), Comparison("Origin", "NOT IN", ("Web",)))),
            Not(Comparison("IsClosed", "=", True)),
        )
    )
    assert parse_soql("SELECT Id FROM Case WHERE A <> 'x'").where == Comparison("A", "!=", "x")


@pytest.mark.parametrize(
    ("soql", "column", "message"),
    [
        ("SELECT Id FROM", 15, "unexpected token: <EOF>"),
        ("SELECT FROM Case", 8, "unexpected token: 'FROM'"),
        ("SELECT Id FROM Case WHERE A = 'x' AND B = 'y' OR C = 'z'", 47, "unexpected token: 'OR'"),
        ("SELECT Id FROM Case WHERE A = x", 31, "unexpected token: 'x'"),
        ("SELECT Id FROM Case LIMIT ten", 27, "unexpected token: 'ten'"),
        ("SELECT Id FROM Case OFFSET 2001", 28, "Maximum SOQL offset allowed is 2000"),
        ("SELECT Id FROM Case WHERE Subject LIKE 5", 40, "unexpected token: '5'"),
        ("SELECT Id FROM Case ORDER BY Id NULLS", 38, "unexpected token: <EOF>"),
        ("SELECT Id FROM Case WHERE A = 'x' garbage", 35, "unexpected token: 'garbage'"),
        ("SELECT Id FROM Case WHERE A = 'bad\\q'", 31, "Illegal character sequence '\\q'"),
    ],
)
def test_malformed_queries_point_at_the_problem(soql: str, column: int, message: str) -> None:
    with pytest.raises(MalformedQuery) as exc:
        parse_soql(soql)
    assert exc.value.code == "MALFORMED_QUERY" and exc.value.status == 400
    assert f"ERROR at Row:1:Column:{column}\n" in exc.value.message
    assert message in exc.value.message
