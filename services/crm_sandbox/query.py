"""Running a parsed SOQL query: checked against the schema, then evaluated on records.

`bind` resolves names the way Salesforce does (case-insensitive, canonical
names in results) and rejects unknown objects and fields, filters on
long text areas and literals of the wrong type; `execute` filters, sorts and
slices stored records; `project` renders one result row. String comparisons
are case-insensitive and `!=` matches null values, as in SOQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from .errors import InvalidField, InvalidQueryFilterOperator, InvalidType
from .ids import normalize_id
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldSpec, Schema, SObjectSpec
from .sftime import parse_datetime
from .soql import And, Comparison, Condition, Not, Operator, Or, Query, Value

__all__ = ["BoundQuery", "bind", "execute", "id_filter", "project", "record_url", "resolve_field"]


@dataclass(frozen=True, slots=True)
class _Test:
    spec: FieldSpec
    op: Operator
    value: Any  # comparable literal, a frozenset for IN, a compiled regex for LIKE, selections for INCLUDES


@dataclass(frozen=True, slots=True)
class _All:
    parts: tuple[_Predicate, ...]


@dataclass(frozen=True, slots=True)
class _Any:
    parts: tuple[_Predicate, ...]


@dataclass(frozen=True, slots=True)
class _Negation:
    part: _Predicate


_Predicate = _Test | _All | _Any | _Negation


@dataclass(frozen=True, slots=True)
class _Sort:
    spec: FieldSpec
    descending: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class BoundQuery:
    """A query whose names are resolved against the schema; ready to run."""

    sobject: SObjectSpec
    fields: tuple[FieldSpec, ...]
    where: _Predicate | None
    order_by: tuple[_Sort, ...]
    limit: int | None
    offset: int | None

    @property
    def is_count(self) -> bool:
        return not self.fields


def bind(schema: Schema, query: Query) -> BoundQuery:
    sobject = schema.get(query.sobject)
    if sobject is None:
        raise InvalidType(
            f"sObject type '{query.sobject}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names."
        )
    fields: list[FieldSpec] = []
    for name in query.fields:
        spec = resolve_field(sobject, name)
        if spec not in fields:
            fields.append(spec)
    order_by = []
    for item in query.order_by:
        spec = resolve_field(sobject, item.field)
        if not spec.filterable or spec.type == "multipicklist":
            raise InvalidField(f"field '{spec.name}' can not be sorted in a query call")
        order_by.append(_Sort(spec, item.descending, item.nulls_last))
    return BoundQuery(
        sobject,
        tuple(fields),
        None if query.where is None else _bind_condition(sobject, query.where),
        tuple(order_by),
        query.limit,
        query.offset,
    )


def resolve_field(sobject: SObjectSpec, name: str) -> FieldSpec:
    """The field `name` of `sobject`; INVALID_FIELD as SOQL reports it if there is none."""
    if "." in name:
        raise InvalidField(
            f"Didn't understand relationship '{name.split('.')[0]}' in field path. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name. Please reference your WSDL or the describe call for the "
            "appropriate names."
        )
    spec = sobject.field(name)
    if spec is None:
        raise InvalidField(
            f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names."
        )
    return spec


def _bind_condition(sobject: SObjectSpec, cond: Condition) -> _Predicate:
    if isinstance(cond, And):
        return _All(tuple(_bind_condition(sobject, p) for p in cond.parts))
    if isinstance(cond, Or):
        return _Any(tuple(_bind_condition(sobject, p) for p in cond.parts))
    if isinstance(cond, Not):
        return _Negation(_bind_condition(sobject, cond.part))
    return _bind_comparison(sobject, cond)


def _bind_comparison(sobject: SObjectSpec, comparison: Comparison) -> _Test:
    spec = resolve_field(sobject, comparison.field)
    if not spec.filterable:
        raise InvalidField(f"field '{spec.name}' can not be filtered in a query call")
    if comparison.op == "LIKE":
        if spec.type not in TEXT_TYPES or spec.type == "multipicklist":
            raise InvalidQueryFilterOperator(f"invalid operator on {_type_name(spec)} field")
        assert isinstance(comparison.value, str)
        return _Test(spec, "LIKE", _like_pattern(comparison.value))
    if comparison.op in ("INCLUDES", "EXCLUDES"):
        if spec.type != "multipicklist":
            raise InvalidQueryFilterOperator("includes or excludes operator only valid on multipicklist field")
        assert isinstance(comparison.value, tuple)
        return _Test(spec, comparison.op, tuple(_literal(spec, v) for v in comparison.value))
    if comparison.op in ("IN", "NOT IN"):
        assert isinstance(comparison.value, tuple)
        values = frozenset(_literal(spec, v) for v in comparison.value)
        return _Test(spec, comparison.op, values)
    assert not isinstance(comparison.value, tuple)
    return _Test(spec, comparison.op, _literal(spec, comparison.value))


def _type_name(spec: FieldSpec) -> str:
    if spec.type in TEXT_TYPES:
        return "string"
    return {"datetime": "dateTime", "currency": "double", "reference": "id"}.get(spec.type, spec.type)


def _literal(spec: FieldSpec, value: Value) -> Any:
    if value is None:
        return None
    expected = _type_name(spec)
    quoted = "be enclosed in quotes" if expected in ("string", "id") else "not be enclosed in quotes"
    mismatch = InvalidField(
        f"value of filter criterion for field '{spec.name}' must be of type {expected} and should {quoted}"
    )
    if spec.type in TEXT_TYPES:
        if not isinstance(value, str):
            raise mismatch
        return _selection(value) if spec.type == "multipicklist" else value.casefold()
    if spec.type in ("id", "reference"):
        if not isinstance(value, str):
            raise mismatch
        record_id = normalize_id(value)
        if record_id is None:
            raise InvalidQueryFilterOperator(f"invalid ID field: {value}")
        return record_id
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise mismatch
        return value
    if spec.type in NUMBER_TYPES:
        if not isinstance(value, Decimal):
            raise mismatch
        return value
    if spec.type == "datetime":
        if not isinstance(value, datetime):
            raise mismatch
        return value
    if not isinstance(value, date) or isinstance(value, datetime):
        raise mismatch
    return value


def _like_pattern(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _selection(text: str) -> frozenset[str]:
    """A multi-select picklist's value as SOQL compares it: ``= 'a;b'`` matches ``b;a`` too."""
    return frozenset(v.strip().casefold() for v in text.split(";") if v.strip())


def _comparable(spec: FieldSpec, stored: Any) -> Any:
    """A stored JSON value in the form literals are compared with."""
    if stored is None:
        return None
    if spec.type in TEXT_TYPES:
        return _selection(str(stored)) if spec.type == "multipicklist" else str(stored).casefold()
    if spec.type in NUMBER_TYPES:
        return Decimal(str(stored))
    if spec.type == "datetime":
        return parse_datetime(stored)
    if spec.type == "date":
        return date.fromisoformat(stored)
    return stored


def _matches(predicate: _Predicate, record: Mapping[str, Any]) -> bool:
    if isinstance(predicate, _All):
        return all(_matches(p, record) for p in predicate.parts)
    if isinstance(predicate, _Any):
        return any(_matches(p, record) for p in predicate.parts)
    if isinstance(predicate, _Negation):
        return not _matches(predicate.part, record)
    actual = _comparable(predicate.spec, record.get(predicate.spec.name))
    if predicate.spec.type == "boolean" and actual is None:
        actual = False
    expected = predicate.value
    match predicate.op:
        case "=":
            return bool(actual == expected)
        case "!=":
            return bool(actual != expected)
        case "IN":
            return actual in expected
        case "NOT IN":
            return actual not in expected
        case "LIKE":
            return actual is not None and expected.fullmatch(actual) is not None
        case "INCLUDES":  # any of the lists, each a set of values selected together ('a;b' = a and b)
            return actual is not None and any(wanted <= actual for wanted in expected if wanted is not None)
        case "EXCLUDES":
            return not any(wanted <= (actual or frozenset()) for wanted in expected if wanted is not None)
    if actual is None or expected is None:
        return False
    match predicate.op:
        case "<":
            return bool(actual < expected)
        case "<=":
            return bool(actual <= expected)
        case ">":
            return bool(actual > expected)
        case _:
            return bool(actual >= expected)


def id_filter(query: BoundQuery) -> frozenset[str] | None:
    """The only ids the query can match when its filter pins Id (`Id = x`, `Id IN (...)`)."""
    tests = query.where.parts if isinstance(query.where, _All) else (query.where,)
    for test in tests:
        if isinstance(test, _Test) and test.spec.type == "id":
            if test.op == "=":
                return frozenset() if test.value is None else frozenset({test.value})
            if test.op == "IN":
                return frozenset(v for v in test.value if v is not None)
    return None


def execute(query: BoundQuery, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records matching the query, ordered, after OFFSET and LIMIT."""
    rows = [r for r in records if query.where is None or _matches(query.where, r)]
    for sort in reversed(query.order_by):
        rows.sort(key=partial(_sort_key, sort), reverse=sort.descending)
    start = query.offset or 0
    end = None if query.limit is None else start + query.limit
    return rows[start:end]


def _sort_key(sort: _Sort, record: Mapping[str, Any]) -> tuple[Any, ...]:
    value = _comparable(sort.spec, record.get(sort.spec.name))
    null_rank = 1 if sort.nulls_last else 0
    if sort.descending:  # the whole sort is reversed, so flip where nulls go
        null_rank = 1 - null_rank
    return (null_rank,) if value is None else (1 - null_rank, value)


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"


def project(
    sobject: SObjectSpec, fields: Iterable[FieldSpec], record: Mapping[str, Any], version: str
) -> dict[str, Any]:
    """One record as the API renders it: `attributes`, then the fields asked for."""
    row: dict[str, Any] = {"attributes": {"type": sobject.name, "url": record_url(version, sobject.name, record["Id"])}}
    for spec in fields:
        value = record.get(spec.name)
        row[spec.name] = False if value is None and spec.type == "boolean" else value
    return row
