"""Typed reads of consumed Kafka records, for the tests (``from tests.kafkakit import headers_of, key_of, value_of``).

confluent-kafka's stubs type what a producer may pass: a record's key and value
``bytes | None``, its headers a list or a dict of ``str | bytes | None`` values.
A consumed record has its headers as a list of ``(name, bytes | None)``. These
helpers assert what a test relies on and return the narrower types.
"""

from __future__ import annotations

from confluent_kafka import Message

__all__ = ["header_list", "headers_of", "key_of", "value_of"]


def _where(m: Message) -> str:
    return f"{m.topic()}[{m.partition()}]@{m.offset()}"


def value_of(m: Message) -> bytes:
    """``m.value()`` of a record that has one (not a tombstone)."""
    value = m.value()
    assert value is not None, f"the record at {_where(m)} has no value"
    return value


def key_of(m: Message) -> bytes:
    """``m.key()`` of a record that has one."""
    key = m.key()
    assert key is not None, f"the record at {_where(m)} has no key"
    return key


def header_list(m: Message) -> list[tuple[str, bytes | None]]:
    """``m.headers() or []``: a consumed record's headers, in order, as (name, value or None)."""
    headers = m.headers() or []
    assert isinstance(headers, list), f"the headers of {_where(m)} are a {type(headers).__name__}, not a list"
    found: list[tuple[str, bytes | None]] = []
    for name, value in headers:
        assert value is None or isinstance(value, bytes), f"header {name} of {_where(m)} is {value!r}"
        found.append((name, value))
    return found


def headers_of(m: Message) -> dict[str, bytes]:
    """``dict(m.headers() or [])`` for a record whose headers all have a value (the last of a repeated name wins)."""
    found: dict[str, bytes] = {}
    for name, value in header_list(m):
        assert value is not None, f"header {name} of {_where(m)} has no value"
        found[name] = value
    return found
