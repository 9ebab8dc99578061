"""Operator tools without infrastructure: lag rows, dead-letter helpers, samples and event files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmpilot.events import CaseEvent, decode, encode
from crmpilot.ops.dlq import DeadLetter, count_by_error, preview
from crmpilot.ops.errors import EventFileError
from crmpilot.ops.lag import lag_rows
from crmpilot.ops.samples import SAMPLE_TYPES, load_events, sample_events


def test_lag_rows_cover_owned_and_committed_partitions_like_kafkas_tool() -> None:
    committed = {("t", 0): 5, ("t", 2): 9}
    ends = {("t", 0): 8, ("t", 1): 4, ("t", 2): 9}
    owners = {("t", 0): ("m1", "c1", "/h"), ("t", 1): ("m1", "c1", "/h")}
    rows = lag_rows(committed, ends, owners)
    assert [(r.partition, r.committed, r.end, r.lag, r.member_id) for r in rows] == [
        (0, 5, 8, 3, "m1"),
        (1, None, 4, None, "m1"),  # assigned, nothing committed yet: "-"
        (2, 9, 9, 0, None),  # committed, no member
    ]


def _dead(code: str, cls: str = "x.Err", topic: str = "a.dlq") -> DeadLetter:
    headers = (("crmpilot.error.class", cls.encode()), ("crmpilot.error.code", code.encode()))
    return DeadLetter(topic, 0, 0, None, None, headers, None)


def test_dead_letters_are_counted_by_topic_error_class_and_code() -> None:
    counts = count_by_error(
        [_dead("a"), _dead("b"), _dead("b"), _dead("b", topic="b.dlq"), DeadLetter("a.dlq", 0, 1, None, None, (), None)]
    )
    assert [(c.topic, c.error_code, c.count) for c in counts] == [
        ("a.dlq", "b", 2),
        ("a.dlq", "unknown", 1),
        ("a.dlq", "a", 1),
        ("b.dlq", "b", 1),
    ]


def test_payload_preview_is_cut_and_shows_bytes_that_are_not_text() -> None:
    assert preview(None) == "<null>"
    assert preview(b"x" * 500, 10) == "x" * 9 + "…"
    assert preview(b"\xff{") == "\\xff{"


@pytest.mark.parametrize("event_type", SAMPLE_TYPES)
def test_samples_are_valid_new_events_keyed_by_their_entity(event_type: str) -> None:
    events = sample_events(event_type, 5, seed=1)
    assert len({e.id for e in events}) == 5
    for e in events:
        assert decode(encode(e)).id == e.id  # exactly what a consumer accepts
        assert e.type == event_type and e.subject
    assert [e.data for e in sample_events(event_type, 3, seed=7)] != [] and sample_events(event_type, 2, seed=7)[
        0
    ].data.model_dump(exclude={"last_modified", "received_at"}) == sample_events(event_type, 2, seed=7)[
        0
    ].data.model_dump(exclude={"last_modified", "received_at"})


def test_unknown_sample_type_is_an_error() -> None:
    with pytest.raises(EventFileError, match="no samples"):
        sample_events("ai.ticket.classified", 1)


def test_event_files_take_whole_envelopes_or_data_lines(tmp_path: Path) -> None:
    envelope = sample_events("crm.case.created", 1)[0]
    path = tmp_path / "events.jsonl"
    path.write_text(
        encode(envelope).decode() + "\n\n" + json.dumps({"case_id": "500X", "subject": "Printer on fire"}) + "\n"
    )
    first, second = load_events(path, "crm.case.updated")
    assert first == envelope
    assert second.type == "crm.case.updated" and second.subject == "500X"
    assert isinstance(second.data, CaseEvent) and second.data.subject == "Printer on fire"


@pytest.mark.parametrize(
    ("line", "event_type", "message"),
    [
        ("{not json", "crm.case.created", ":1: "),
        ('{"case_id": ""}', "crm.case.created", "case_id"),
        ('{"case_id": "5"}', None, "needs --type"),
        (
            '{"specversion": "1.0", "type": "crm.case.created", "schemaversion": 9, "data": {}}',
            None,
            "no schema version 9",
        ),
        ('{"case_id": "5"}', "no.such.type", "unknown event type"),
    ],
)
def test_bad_event_file_lines_are_reported_with_their_line(
    tmp_path: Path, line: str, event_type: str | None, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(EventFileError, match=message):
        load_events(path, event_type)
    with pytest.raises(EventFileError, match="cannot read"):
        load_events(tmp_path / "missing.jsonl", event_type)


def test_service_health_endpoints_come_from_the_services_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from crmpilot.ops.status import SERVICES, service_endpoints

    for name in SERVICES:
        monkeypatch.delenv(f"CRMPILOT_{name.upper()}_HTTP_PORT", raising=False)
        monkeypatch.delenv(f"CRMPILOT_{name.upper()}_HTTP_HOST", raising=False)
    assert service_endpoints() == {}
    monkeypatch.setenv("CRMPILOT_CRM_WRITER_HTTP_PORT", "9105")
    monkeypatch.setenv("CRMPILOT_CRM_WRITER_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("CRMPILOT_WAREHOUSE_WRITER_HTTP_PORT", "9104")
    monkeypatch.setenv("CRMPILOT_WAREHOUSE_WRITER_HTTP_HOST", "10.0.0.5")
    assert service_endpoints() == {"crm_writer": "http://127.0.0.1:9105", "warehouse_writer": "http://10.0.0.5:9104"}
    monkeypatch.setenv("CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT", "9403")
    assert service_endpoints(["score_request"])["enricher_score_request"] == "http://127.0.0.1:9403"
    assert "enricher_score_request" not in service_endpoints(), "an enricher is probed when its enrichment is known"
