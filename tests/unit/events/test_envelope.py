"""The envelope: round trips, strict decoding, typed errors for bad records."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmpilot.events import (
    CaseEvent,
    Envelope,
    InvalidEncoding,
    InvalidJSON,
    InvalidPayload,
    OversizePayload,
    PoisonMessage,
    UnknownEventType,
    UnknownSchemaVersion,
    decode,
    encode,
    result_id_for,
)


def _case_envelope(**data: object) -> Envelope[CaseEvent]:
    payload: dict[str, object] = {
        "case_id": "500000000000001",
        "subject": "Card declined",
        "description": "My card was declined.",
    }
    payload.update(data)
    return Envelope[CaseEvent](
        source="crm://demo",
        type="crm.case.created",
        schemaversion=1,
        subject="500000000000001",
        data=CaseEvent.model_validate(payload),
    )


def test_round_trip_keeps_every_field() -> None:
    env = _case_envelope(is_vip=True, changed_fields=("Subject",))
    back = decode(encode(env))
    assert back == env
    assert isinstance(back.data, CaseEvent)
    assert back.data.is_vip is True


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"\xff\xfe not utf8", InvalidEncoding, "UTF-8"),
        (b"not json at all", InvalidJSON, "not JSON"),
        (b"[1, 2]", InvalidJSON, "expected an object"),
        (None, InvalidJSON, "tombstone"),
        (b'{"type": "crm.nope", "schemaversion": 1}', UnknownEventType, "crm.nope"),
        (b'{"type": "crm.case.created", "schemaversion": 7}', UnknownSchemaVersion, "no schema version 7"),
        (b'{"type": "crm.case.created", "schemaversion": "1"}', InvalidPayload, "schemaversion"),
        (
            b'{"type": "crm.case.created", "schemaversion": 1, "id": "e1", "time": "2026-11-01T00:00:00Z", "data": {}}',
            InvalidPayload,
            "data.case_id",
        ),
        (b'{"type": "crm.case.created", "schemaversion": 1, "data": {}}', InvalidPayload, "has no 'id' or 'time'"),
    ],
)
def test_bad_records_raise_a_typed_error_that_says_why(
    raw: bytes | None, error: type[PoisonMessage], words: str
) -> None:
    with pytest.raises(error) as info:
        decode(raw)
    assert words in str(info.value)


def test_oversize_record_is_refused_before_parsing() -> None:
    raw = encode(_case_envelope(description="x" * 5000))
    with pytest.raises(OversizePayload, match="limit is 1000"):
        decode(raw, max_bytes=1000)


def test_unknown_fields_are_refused() -> None:
    obj = json.loads(encode(_case_envelope()))
    obj["data"]["AI_Category__c"] = "injected"
    with pytest.raises(InvalidPayload, match="AI_Category__c"):
        decode(json.dumps(obj).encode())


def test_result_id_is_deterministic_and_depends_on_prompt_version() -> None:
    a = result_id_for("evt-1", "classify_ticket", "v1")
    assert a == result_id_for("evt-1", "classify_ticket", "v1")
    assert a != result_id_for("evt-1", "classify_ticket", "v2")
    assert a != result_id_for("evt-2", "classify_ticket", "v1")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_anything_but_poison(raw: bytes) -> None:
    try:
        decode(raw)
    except PoisonMessage:
        pass


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=10, max_value=5000))
def test_deeply_nested_json_is_poison_not_a_crash(depth: int) -> None:
    raw = ("[" * depth + "]" * depth).encode()
    with pytest.raises(InvalidJSON):
        decode(raw)
