"""Write-back rules a support lead relies on: fields filled once, a person's edit never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from crmpilot.crm import CRMRejected, FakeCRM, write_back
from crmpilot.events import EmailSummary, ReviewDecision, TicketClassification, result_id_for
from crmpilot.tasks.taxonomy import category_names
from crmpilot.warehouse import CrmAuditEntry
from tests import resultkit

EVENT_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BOT = "005000000000001AAA"
HUMAN = "005000000000002AAA"


class ListAudit:
    def __init__(self) -> None:
        self.entries: list[CrmAuditEntry] = []

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int:
        self.entries.extend(entries)
        return len(entries)

    def crm_audit(
        self, *, result_ids: Sequence[str] | None = None, statuses: Sequence[str] = ("applied",)
    ) -> list[CrmAuditEntry]:
        return [e for e in self.entries if e.status in statuses and (result_ids is None or e.result_id in result_ids)]


class DownAudit(ListAudit):
    """The audit insert fails, as when the writer dies right after the CRM update."""

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int:
        raise ConnectionError("warehouse down")


def classification(
    case_id: str = "500000000000001AAA",
    *,
    category: str = "Payments",
    review: ReviewDecision = "auto_apply",
    event: str = "evt-1",
) -> TicketClassification:
    return resultkit.classification(case_id, category=category, review=review, event=event, event_time=EVENT_TIME)


@pytest.fixture
def crm() -> FakeCRM:
    fake = FakeCRM(user_id=BOT, restricted={"AI_Category__c": category_names()})
    fake.put("Case", "500000000000001AAA", by=HUMAN, at=EVENT_TIME - timedelta(minutes=5), AI_Category__c=None)
    return fake


def test_applies_fields_and_audits_before_and_after(crm: FakeCRM) -> None:
    audit = ListAudit()
    [report] = write_back([classification()], crm, audit)
    assert report.status == "applied"
    rec = crm.records[("Case", "500000000000001AAA")]
    assert rec["AI_Category__c"] == "Payments"
    assert rec["AI_Review_Required__c"] is False
    category = next(e for e in audit.entries if e.field == "AI_Category__c")
    assert (category.before_value, category.after_value, category.status) == (None, "Payments", "applied")


def test_redelivered_result_writes_nothing_twice(crm: FakeCRM) -> None:
    audit = ListAudit()
    write_back([classification()], crm, audit)
    writes_after_first = len(crm.writes)
    [report] = write_back([classification()], crm, audit)
    assert report.status == "already_applied"
    assert len(crm.writes) == writes_after_first


def test_a_person_editing_after_the_event_wins(crm: FakeCRM) -> None:
    crm.put("Case", "500000000000001AAA", by=HUMAN, at=EVENT_TIME + timedelta(minutes=1), AI_Category__c="Billing")
    audit = ListAudit()
    [report] = write_back([classification()], crm, audit)
    assert report.status == "skipped_human_edit"
    assert crm.records[("Case", "500000000000001AAA")]["AI_Category__c"] == "Billing"
    assert audit.entries[0].status == "skipped_human_edit"


def test_our_own_earlier_write_does_not_block_a_newer_result(crm: FakeCRM) -> None:
    crm.put("Case", "500000000000001AAA", by=BOT, at=EVENT_TIME + timedelta(minutes=1), AI_Category__c="Billing")
    [report] = write_back([classification()], crm, ListAudit())
    assert report.status == "applied"


def test_low_confidence_is_written_as_a_suggestion_flagged_for_review(crm: FakeCRM) -> None:
    write_back([classification(review="suggest")], crm, ListAudit())
    assert crm.records[("Case", "500000000000001AAA")]["AI_Review_Required__c"] is True


def test_skip_decision_writes_nothing(crm: FakeCRM) -> None:
    [report] = write_back([classification(review="skip")], crm, ListAudit())
    assert report.status == "skipped_low_confidence"
    assert crm.writes == []


def test_missing_record_is_a_recorded_skip(crm: FakeCRM) -> None:
    audit = ListAudit()
    [report] = write_back([classification("500000000000999AAA")], crm, audit)
    assert report.status == "skipped_not_found"
    assert audit.entries[0].record_id == "500000000000999AAA"


def test_value_outside_the_picklist_is_rejected_with_the_crm_code(crm: FakeCRM) -> None:
    bad = classification(event="bad").model_copy(update={"category": "HACKED"})
    crm.put("Case", "500000000000002AAA", by=HUMAN, at=EVENT_TIME - timedelta(hours=1))
    good = classification("500000000000002AAA", event="good")
    audit = ListAudit()
    rejected, applied = write_back([bad, good], crm, audit)
    assert (rejected.status, applied.status) == ("rejected", "applied")
    with pytest.raises(CRMRejected) as info:
        rejected.raise_if_rejected()
    assert info.value.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "AI_Category__c" in str(info.value)
    assert crm.records[("Case", "500000000000001AAA")].get("AI_Category__c") is None
    assert any(e.status == "failed" and e.record_id == "500000000000001AAA" for e in audit.entries)


def test_two_results_for_one_record_in_a_batch_are_written_in_turn(crm: FakeCRM) -> None:
    first = classification(event="first", category="Billing")
    second = classification(event="second", category="Refund")
    reports = write_back([first, second], crm, ListAudit())
    assert [r.status for r in reports] == ["applied", "applied"]
    assert len(crm.writes) == 2
    assert crm.records[("Case", "500000000000001AAA")]["AI_Category__c"] == "Refund"


def test_batch_mixes_outcomes_in_order(crm: FakeCRM) -> None:
    crm.put("Case", "500000000000002AAA", by=HUMAN, at=EVENT_TIME + timedelta(hours=1))
    reports = write_back(
        [
            classification(event="a"),
            classification("500000000000002AAA", event="b"),
            classification("500000000000404AAA", event="c"),
        ],
        crm,
        ListAudit(),
    )
    assert [r.status for r in reports] == ["applied", "skipped_human_edit", "skipped_not_found"]


def test_a_summary_on_the_same_case_does_not_hide_the_classification_marker(crm: FakeCRM) -> None:
    ticket = classification()
    summary = EmailSummary(
        result_id=result_id_for("email-evt", "summarize_email", "v1"),
        review="auto_apply",
        provenance=ticket.provenance,
        email_id="02s000000000001AAA",
        case_id="500000000000001AAA",
        summary="Customer asks for a refund.",
        intent="request",
        sentiment="neutral",
        urgency="normal",
        verified=True,
    )
    assert [r.status for r in write_back([ticket], crm, ListAudit())] == ["applied"]
    assert [r.status for r in write_back([summary], crm, ListAudit())] == ["applied"]
    writes = len(crm.writes)
    assert [r.status for r in write_back([ticket, summary], crm, ListAudit())] == ["already_applied", "already_applied"]
    assert len(crm.writes) == writes
    rec = crm.records[("Case", "500000000000001AAA")]
    assert (rec["AI_Result_Id__c"], rec["AI_Summary_Result_Id__c"]) == (ticket.result_id, summary.result_id)


def test_a_write_whose_audit_was_lost_is_audited_on_redelivery_without_writing_again(crm: FakeCRM) -> None:
    with pytest.raises(ConnectionError):
        write_back([classification()], crm, DownAudit())
    writes = len(crm.writes)
    audit = ListAudit()
    [report] = write_back([classification()], crm, audit)
    assert report.status == "already_applied"
    assert len(crm.writes) == writes, "the CRM is not written twice"
    applied = {e.field: e for e in audit.entries if e.status == "applied"}
    assert applied["AI_Category__c"].after_value == "Payments"
    assert "recovered" in (applied["AI_Category__c"].reason or "")
    write_back([classification()], crm, audit)
    assert len([e for e in audit.entries if e.field == "AI_Category__c"]) == 1, (
        "recovered once, not on every redelivery"
    )
