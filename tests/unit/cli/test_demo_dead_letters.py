"""The demo counts an event its service dead-lettered as decided, with the reason, instead of waiting for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from crmpilot.cli.demo import _DeadLetters, _Task, lead_events
from crmpilot.enrichments import load_registry, task_for
from crmpilot.llm import LLMClient
from crmpilot.llm.testing import FakeProvider
from enricher.bootstrap import handler_for
from tests.handlerkit import only_result

REGISTRY = load_registry([])
SCORER = REGISTRY.get("score_request")  # the demo's leads are scored by the built-in spec, on its enricher
GROUP = "crmpilot-request-scorer"  # the spec keeps the group of the service it replaced


def _task() -> _Task:
    leads = [
        {
            "Id": f"00Q00000000000{i}AAA",
            "Company": f"Acme {i}",
            "Description": "We need 40 seats",
            "CreatedDate": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
            "LastModifiedDate": datetime(2026, 1, 2, tzinfo=UTC).isoformat(),
        }
        for i in range(3)
    ]
    return _Task("leads", task_for(SCORER), "fact_enrichment", lead_events(leads, source="crm://test"), SCORER.group)


def test_the_demo_waits_for_the_result_ids_and_dead_letters_the_score_request_enricher_gives() -> None:
    task = _task()
    assert task.group == GROUP  # the group in the enricher's dead letters
    answer: dict[str, Any] = {
        "score": 64, "factors": [], "risk_flags": [], "next_action": "Call.",
        "confidence": {"score": 0.9, "factors": 0.9, "risk_flags": 0.9, "next_action": 0.9},
    }  # fmt: skip
    scorer = handler_for(REGISTRY, "score_request", LLMClient(FakeProvider(lambda spec, payload: answer)))
    results = [only_result(scorer, event, "crm.lead.events") for event in task.events]
    assert [r.result_id for r in results] == task.result_ids
    assert [r.record_id for r in results] == [e.data.request_id for e in task.events]


def _dead_letters() -> _DeadLetters:
    dead = _DeadLetters.__new__(_DeadLetters)  # no broker: only the bookkeeping is under test
    dead.events, dead.keys = {}, {}
    return dead


def _headers(group: str, code: str) -> dict[str, bytes | None]:
    return {"crmpilot.consumer.group": group.encode(), "crmpilot.error.code": code.encode()}


def test_an_event_dead_lettered_by_its_service_counts_with_its_error_code() -> None:
    task, dead = _task(), _dead_letters()
    first, second, _ = task.events
    dead._take(b"k1", json.dumps({"id": first.id}).encode(), _headers(GROUP, "llm_invalid_output"))
    dead._take(b"k2", json.dumps({"id": second.id}).encode(), _headers("another-group", "llm_invalid_output"))
    assert dict(dead.of(task, stored=set())) == {"llm_invalid_output": 1}  # another group's dead letter is not ours


def test_a_result_stored_after_all_wins_over_an_older_dead_letter() -> None:
    task, dead = _task(), _dead_letters()
    dead._take(b"k1", json.dumps({"id": task.events[0].id}).encode(), _headers(GROUP, "llm_invalid_output"))
    assert not dead.of(task, stored={task.result_ids[0]})  # replayed, or an earlier run's dead letter


def test_a_malformed_record_is_known_by_its_key() -> None:
    dead = _dead_letters()
    dead._take(b"demo-bad-json-1", b"{this is not json", _headers("crmpilot-ticket-classifier", "invalid_json"))
    dead._take(b"demo-bad-version-1", b"[1, 2]", _headers("crmpilot-ticket-classifier", "unknown_schema_version"))
    assert dead.keys == {
        b"demo-bad-json-1": {"crmpilot-ticket-classifier"},
        b"demo-bad-version-1": {"crmpilot-ticket-classifier"},
    }
    assert dead.events == {}
