"""Revert, as a support lead relies on it: our values go back, a person's later change stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmpilot.crm import FakeCRM, write_back
from crmpilot.crm.revert import new_revert_run_id, revert, select_applied
from crmpilot.events import TicketClassification
from crmpilot.warehouse import InMemoryWarehouse
from tests import resultkit

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BOT = "005000000000001AAA"
HUMAN = "005000000000002AAA"
CASE = "500000000000001AAA"


def classification(case_id: str = CASE, *, category: str = "Payments", event: str = "evt-1") -> TicketClassification:
    return resultkit.classification(case_id, category=category, event=event, event_time=EVENT_TIME)


@pytest.fixture
def crm() -> FakeCRM:
    fake = FakeCRM(user_id=BOT)
    for n in range(1, 4):
        fake.put(
            "Case",
            f"50000000000000{n}AAA",
            by=HUMAN,
            at=EVENT_TIME - timedelta(minutes=5),
            AI_Category__c="Other",
            AI_Priority__c="Low",
            AI_Confidence__c=0.2,
            AI_Review_Required__c=True,
        )
    return fake


def test_revert_restores_before_values_and_records_it(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    write_back([classification()], crm, wh, run_id="run-1")
    report = revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1")

    rec = crm.records[("Case", CASE)]
    assert (rec["AI_Category__c"], rec["AI_Priority__c"], rec["AI_Confidence__c"], rec["AI_Review_Required__c"]) == (
        "Other",
        "Low",
        0.2,
        True,
    )
    assert rec.get("AI_Result_Id__c") is None
    assert report.count("reverted") == len(report.fields) > 0
    assert not select_applied(wh, run_id="run-1"), "the original entries are marked reverted"
    rows = wh.crm_audit(run_id="revert-1", statuses=("reverted",))
    category = next(r for r in rows if r.field == "AI_Category__c")
    assert (category.before_value, category.after_value) == ("Payments", "Other")


def test_a_reverted_result_delivered_again_is_not_written_again(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    result = classification()
    write_back([result], crm, wh, run_id="run-1")
    revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1")
    calls = crm.api_calls

    [again] = write_back([result], crm, wh, run_id="run-2")

    assert again.status == "already_reverted"
    assert crm.records[("Case", CASE)]["AI_Category__c"] == "Other", "the operator's revert stands"
    assert crm.api_calls == calls + 1, "one read, no write"
    assert not wh.crm_audit(run_id="run-2", statuses=("applied",))
    [newer] = write_back([classification(event="evt-2", category="Cards")], crm, wh, run_id="run-3")
    assert newer.status == "applied", "a later result for the same case is still applied"


def test_a_field_a_person_changed_since_is_left_alone_and_reported(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    write_back([classification()], crm, wh, run_id="run-1")
    crm.put("Case", CASE, by=HUMAN, AI_Category__c="Billing")
    report = revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1")

    rec = crm.records[("Case", CASE)]
    assert rec["AI_Category__c"] == "Billing", "the person's value stays"
    assert rec["AI_Priority__c"] == "Low", "the other fields are reverted"
    [skipped] = report.with_status("changed_since")
    assert (skipped.field, skipped.current, skipped.ours) == ("AI_Category__c", "Billing", "Payments")
    assert [e.field for e in select_applied(wh, run_id="run-1")] == ["AI_Category__c"]


def test_dry_run_changes_nothing(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    write_back([classification()], crm, wh, run_id="run-1")
    writes = len(crm.writes)
    report = revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1", dry_run=True)
    assert report.count("would_revert") == len(report.fields) > 0
    assert len(crm.writes) == writes and crm.records[("Case", CASE)]["AI_Category__c"] == "Payments"
    assert len(select_applied(wh, run_id="run-1")) == len(report.fields)
    assert not wh.crm_audit(statuses=("reverted",))


def test_two_results_on_one_record_revert_to_the_value_before_the_first(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    write_back([classification(category="Payments", event="a")], crm, wh, run_id="run-1")
    write_back([classification(category="Refund", event="b")], crm, wh, run_id="run-1")
    revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1")
    assert crm.records[("Case", CASE)]["AI_Category__c"] == "Other"


def test_reverting_an_older_result_superseded_by_a_newer_one_keeps_the_newer(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    older = classification(category="Payments", event="a")
    write_back([older], crm, wh)
    write_back([classification(category="Refund", event="b")], crm, wh)
    report = revert(select_applied(wh, result_ids=[older.result_id]), crm, wh, run_id="revert-1")
    assert crm.records[("Case", CASE)]["AI_Category__c"] == "Refund"
    assert report.count("reverted") == 0 and report.count("changed_since") == len(report.fields)


def test_a_deleted_record_is_reported_not_found(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    write_back([classification()], crm, wh, run_id="run-1")
    del crm.records[("Case", CASE)]
    report = revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1")
    assert report.count("not_found") == len(report.fields)


def test_many_records_share_api_calls_and_progress_is_reported(crm: FakeCRM) -> None:
    wh = InMemoryWarehouse()
    cases = [f"5000000000{n:05d}AAA" for n in range(450)]
    for case in cases:
        crm.put("Case", case, by=HUMAN, at=EVENT_TIME - timedelta(minutes=5))
    write_back([classification(c, event=c) for c in cases], crm, wh, run_id="bulk")
    progress: list[int] = []
    report = revert(select_applied(wh, run_id="bulk"), crm, wh, run_id="r", on_progress=progress.append)
    assert sum(progress) == report.records == 450
    assert report.api_calls == 1 + 3, "one read of up to 2,000 records, one write per 200"


def test_selecting_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        select_applied(InMemoryWarehouse())


def test_revert_run_ids_are_distinct() -> None:
    assert new_revert_run_id() != new_revert_run_id()


OPPORTUNITY = "006000000000001AAA"


@pytest.mark.parametrize(
    ("field", "ours", "now", "multi_select", "status"),
    [
        ("Churn_Signals__c", "outages;competitor", "competitor;outages", True, "reverted"),  # the org's own order
        ("Churn_Reasons__c", "+ budget; - free mail", "- free mail; + budget", False, "changed_since"),  # a person's
    ],
)
def test_selected_values_in_the_orgs_order_are_still_ours_reordered_text_is_not(
    field: str, ours: str, now: str, multi_select: bool, status: str
) -> None:
    from crmpilot.warehouse.records import CrmAuditEntry

    crm, wh = FakeCRM(user_id=BOT), InMemoryWarehouse()
    values: dict[str, Any] = {field: now}
    crm.put("Opportunity", OPPORTUNITY, by=BOT, **values)
    entry = CrmAuditEntry("r1", "Opportunity", OPPORTUNITY, field, None, ours, "applied", run_id="run-1")
    wh.record_crm_audit([entry])
    pairs = {("Opportunity", field)} if multi_select else set()
    report = revert(select_applied(wh, run_id="run-1"), crm, wh, run_id="revert-1", multi_select=pairs)
    assert [f.status for f in report.fields] == [status]
