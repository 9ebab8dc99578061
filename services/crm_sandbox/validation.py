"""Checking a record write against the sObject's fields, the way the org does.

`check_write` turns a request body into canonical field names and normalised
values, or raises the error Salesforce would: unknown field, read-only field,
value of the wrong type, string too long, bad restricted picklist value,
number out of range, required field missing. Whether referenced records exist
needs the store and is checked by the service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .errors import (
    InvalidEmailAddress,
    InvalidField,
    InvalidFieldForInsertUpdate,
    InvalidRestrictedPicklist,
    JsonParserError,
    MalformedId,
    NumberOutsideValidRange,
    RequiredFieldMissing,
    StringTooLong,
)
from .ids import normalize_id
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldSpec, Schema, SObjectSpec
from .sftime import format_datetime, parse_date, parse_datetime

__all__ = ["check_write", "coerce_value"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_JSON_TOKEN_PREVIEW = 50


def check_write(schema: Schema, sobject: SObjectSpec, body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Canonical field name -> normalised value for a create or update body.

    Keys `attributes` (collections) are ignored; None means "set to null".
    """
    resolved: dict[FieldSpec, Any] = {}
    for key, value in body.items():
        if key == "attributes":
            continue
        spec = sobject.field(key)
        if spec is None:
            raise InvalidField(f"No such column '{key}' on sobject of type {sobject.name}")
        resolved[spec] = value

    forbidden = [s.name for s in resolved if not (s.createable if creating else s.updateable)]
    if forbidden:
        raise InvalidFieldForInsertUpdate(forbidden)

    values = {
        spec.name: None if value is None else coerce_value(schema, spec, value) for spec, value in resolved.items()
    }
    for spec in resolved:
        if spec.type == "boolean" and values[spec.name] is None:
            values[spec.name] = False

    if creating:
        missing = [s.name for s in sobject.fields if s.required_on_create and values.get(s.name) is None]
    else:
        missing = [s.name for s in resolved if not s.nillable and values[s.name] is None]
    if missing:
        raise RequiredFieldMissing(missing)
    return values


def coerce_value(schema: Schema, spec: FieldSpec, value: Any) -> Any:
    """A non-null JSON value for `spec`, normalised as the API stores it."""
    if spec.type in TEXT_TYPES:
        return _text(spec, value)
    if spec.type == "boolean":
        return _boolean(spec, value)
    if spec.type in NUMBER_TYPES:
        return _number(spec, value)
    if spec.type == "datetime":
        parsed = parse_datetime(_string_token(value, "datetime"), naive_is_utc=True)
        if parsed is None:
            raise _parser_error("datetime", value)
        return format_datetime(parsed)
    if spec.type == "date":
        day = parse_date(_string_token(value, "date"))
        if day is None:
            raise _parser_error("date", value)
        return day.isoformat()
    return _reference(schema, spec, value)


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


def _parser_error(target: str, value: Any) -> JsonParserError:
    shown = "{" if isinstance(value, dict) else "[" if isinstance(value, list) else value
    return JsonParserError(
        f"Cannot deserialize instance of {target} from {_token(value)} value {shown} "
        "or request may be missing a required field"
    )


def _string_token(value: Any, target: str) -> str:
    if not isinstance(value, str):
        raise _parser_error(target, value)
    return value


def _text(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _parser_error("string", value)
    text = value if isinstance(value, str) else str(value)
    if spec.type == "multipicklist":
        text = _selected(spec, text)
    if spec.type == "picklist" and spec.restricted and text not in spec.picklist:
        raise InvalidRestrictedPicklist(f"{spec.label}: bad value for restricted picklist field: {text}", [spec.name])
    if len(text) > spec.length:
        preview = text if len(text) <= _JSON_TOKEN_PREVIEW else text[:_JSON_TOKEN_PREVIEW] + "..."
        raise StringTooLong(
            f"{spec.label}: data value too large: {preview} (max length={spec.length})",
            [spec.name],
        )
    if spec.type == "email" and text and not _EMAIL.match(text):
        raise InvalidEmailAddress(f"{spec.label}: invalid email address: {text}", [spec.name])
    return text


def _selected(spec: FieldSpec, text: str) -> str:
    """A multi-select picklist's ``a;b`` value as stored: each value once, in the picklist's order (values outside
    an unrestricted picklist after them); a restricted picklist refuses a value it lacks."""
    chosen = list(dict.fromkeys(v.strip() for v in text.split(";") if v.strip()))
    if spec.restricted and (stray := [v for v in chosen if v not in spec.picklist]):
        raise InvalidRestrictedPicklist(
            f"{spec.label}: bad value for restricted picklist field: {stray[0]}", [spec.name]
        )
    rank = {value: i for i, value in enumerate(spec.picklist)}
    return ";".join(sorted(chosen, key=lambda v: rank.get(v, len(rank))))


def _boolean(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _parser_error("boolean", value)


def _number(spec: FieldSpec, value: Any) -> int | float:
    target = "int" if spec.type == "int" else "double"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _parser_error(target, value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise _parser_error(target, value) from exc
    if not number.is_finite():
        raise _parser_error(target, value)
    scale = 0 if spec.type == "int" else spec.scale
    integer_digits = spec.digits if spec.type == "int" else spec.precision - spec.scale
    rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if abs(rounded) >= Decimal(10) ** integer_digits:
        raise NumberOutsideValidRange(
            f"{spec.label}: value outside of valid range on numeric field: {value}", [spec.name]
        )
    return int(rounded) if spec.type == "int" else float(rounded)


def _reference(schema: Schema, spec: FieldSpec, value: Any) -> str:
    record_id = normalize_id(value) if isinstance(value, str) else None
    targets = {t.key_prefix for name in spec.reference_to if (t := schema.get(name))}
    if record_id is None or (spec.type == "reference" and record_id[:3] not in targets):
        raise MalformedId(f"{spec.label}: id value of incorrect type: {value}", [spec.name])
    return record_id
