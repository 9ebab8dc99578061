"""Outputs and contexts: envelopes keyed by subject, trace context passed through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmpilot.events import CaseEvent, Envelope, decode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import MessageContext, Output, produce_events

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _envelope() -> Envelope[CaseEvent]:
    return Envelope[CaseEvent](
        source="test", type="crm.case.created", schemaversion=1, subject="500A1", data=CaseEvent(case_id="500A1")
    )


def test_output_event_is_keyed_by_subject_and_decodes_back() -> None:
    out = Output.event("crm.case.events", _envelope())
    assert out.key == b"500A1"
    assert decode(out.value).subject == "500A1"
    assert ("content-type", b"application/cloudevents+json; charset=utf-8") in out.headers


def test_with_trace_adds_the_input_trace_only_when_missing() -> None:
    out = Output("t", b"k", b"v")
    traced = out.with_trace(TP, b"vendor=1")
    assert dict(traced.headers) == {"traceparent": TP, "tracestate": b"vendor=1"}
    own = Output("t", b"k", b"v", (("traceparent", b"mine"),))
    assert own.with_trace(TP, None) is own
    assert out.with_trace(None, None) is out


def test_context_reads_headers() -> None:
    ctx = MessageContext("t", 0, 5, b"k", (("traceparent", b"old"), ("traceparent", TP)), datetime.now(UTC), "g")
    assert ctx.traceparent == TP.decode()
    assert ctx.tracestate is None
    assert ctx.attempt == 1


def test_a_malformed_traceparent_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="traceparent"):
        produce_events("t", [_envelope()], kafka=KafkaSettings(bootstrap="127.0.0.1:1"), traceparent="nope")


def test_with_source_event_names_the_input_event_once() -> None:
    out = Output("t", b"k", b"v", (("traceparent", TP),))
    tagged = out.with_source_event("evt-42")
    assert tagged.headers == (("traceparent", TP), ("crmpilot.source.event_id", b"evt-42"))
    assert tagged.with_source_event("evt-43") is tagged  # a handler's own value is kept
