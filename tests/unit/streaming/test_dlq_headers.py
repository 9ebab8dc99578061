"""Dead-letter headers: original headers kept, error and source context added."""

from __future__ import annotations

from datetime import UTC, datetime

from crmpilot.errors import Retryable
from crmpilot.events import InvalidJSON
from crmpilot.streaming.dlq import DLQ_HEADERS, dlq_headers, error_code


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - to get a traceback on it
        return caught


def test_headers_carry_error_and_source() -> None:
    exc = _raise(InvalidJSON("record is not JSON: Expecting value"))
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = dlq_headers(
        [("traceparent", b"00-abc"), ("x", None)],
        exc,
        topic="crm.case.events",
        partition=3,
        offset=42,
        attempts=0,
        group_id="ticket-classifier",
        failed_at=at,
    )
    d = dict(headers)
    assert [k for k, _ in headers[:2]] == ["traceparent", "x"]
    assert set(DLQ_HEADERS) <= set(d)
    assert d["crmpilot.error.class"] == b"crmpilot.events.errors.InvalidJSON"
    assert d["crmpilot.error.code"] == b"invalid_json"
    assert d["crmpilot.error.message"] == b"record is not JSON: Expecting value"
    assert b"InvalidJSON" in d["crmpilot.error.stack"]  # type: ignore[operator]  # the header is written with a value
    assert d["crmpilot.source.topic"] == b"crm.case.events"
    assert d["crmpilot.source.partition"] == b"3"
    assert d["crmpilot.source.offset"] == b"42"
    assert d["crmpilot.attempts"] == b"0"
    assert d["crmpilot.failed_at"] == b"2026-01-02T03:04:05+00:00"
    assert d["crmpilot.consumer.group"] == b"ticket-classifier"


def test_a_replayed_record_gets_fresh_error_headers_not_duplicates() -> None:
    first = dlq_headers(
        [], ValueError("one"), topic="t", partition=0, offset=1, attempts=5, group_id="g", failed_at=datetime.now(UTC)
    )
    second = dlq_headers(
        first, KeyError("two"), topic="t", partition=0, offset=9, attempts=5, group_id="g", failed_at=datetime.now(UTC)
    )
    names = [k for k, _ in second]
    assert len(names) == len(set(names)) == len(DLQ_HEADERS)
    assert dict(second)["crmpilot.source.offset"] == b"9"
    assert dict(second)["crmpilot.error.class"] == b"builtins.KeyError"


def test_message_and_stack_are_bounded() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise RuntimeError("x" * 5000)
        deep(n - 1)

    try:
        deep(50)
    except RuntimeError as exc:
        d = dict(
            dlq_headers(
                None, exc, topic="t", partition=0, offset=0, attempts=1, group_id="g", failed_at=datetime.now(UTC)
            )
        )
    assert len(d["crmpilot.error.message"].decode()) <= 1000  # type: ignore[union-attr]  # the header is written with a value
    assert len(d["crmpilot.error.stack"].decode()) <= 2000  # type: ignore[union-attr]  # the header is written with a value


def test_error_codes() -> None:
    class WithCode(Exception):
        code = "crm_conflict"

    assert error_code(InvalidJSON("x")) == "invalid_json"
    assert error_code(WithCode()) == "crm_conflict"
    assert error_code(Retryable("slow")) == "retries_exhausted"
    assert error_code(ZeroDivisionError()) == "unhandled_exception"
