"""The pure parts of erasure and retention: which subjects are accepted, what matches them, what is kept."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmpilot.cli.main import app
from crmpilot.warehouse.errors import InvalidRetention, InvalidSubject
from crmpilot.warehouse.privacy import (
    ERASED,
    PURGED,
    REDACTED_TABLES,
    PrivacyReport,
    RetentionSettings,
    Subject,
    parse_retention,
    redact_json,
    redact_row,
)

ANN = Subject.parse("Ann.Lee@Example.com")


def test_an_address_is_normalised_and_hashed_an_id_is_kept_as_given() -> None:
    assert (ANN.value, ANN.kind) == ("ann.lee@example.com", "email")
    assert ANN.sha256 == Subject.parse(" ann.lee@example.com ").sha256
    assert len(ANN.sha256) == 64 and ANN.value not in ANN.sha256
    lead = Subject.parse("00QAnn00000LeAd")
    assert (lead.value, lead.kind) == ("00QAnn00000LeAd", "id")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ann",
        "12345678",
        "ann lee",
        "@example.com",
        "ann@",
        "ann@example",
        "a b@x.io",
        "%%%%%",
    ],
)
def test_a_subject_that_could_match_too_much_is_refused(bad: str) -> None:
    with pytest.raises(InvalidSubject):
        Subject.parse(bad)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"contact_email": "ann.lee@example.com"}', True),
        ("Write to ANN.LEE@EXAMPLE.COM.", True),
        ("Ann Lee <ann.lee@example.com>", True),
        ('{"body": "Hi,\\nann.lee@example.com"}', True),  # right after a JSON escape
        ("joann.lee@example.com", False),
        ("ann.lee@example.com.au", False),
        ("ann.lee@example.community", False),
        ("ann.lee@example.co", False),
    ],
)
def test_an_address_matches_as_a_whole_token_in_any_case(text: str, found: bool) -> None:
    assert ANN.found_in(text) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [("record 00QAnn00000LeAd.", True), ('"00QAnn00000LeAd"', True), ("00QAnn00000LeAdAAQ", False),
     ("x-00QAnn00000LeAd", False), ("00qann00000lead", False)],
)  # fmt: skip
def test_an_id_matches_exactly_as_a_whole_token(text: str, found: bool) -> None:
    assert Subject.parse("00QAnn00000LeAd").found_in(text) is found


def test_replace_in_keeps_the_text_around_the_subject() -> None:
    assert ANN.replace_in("cc Ann.Lee@example.com, bob@example.org") == f"cc {ERASED}, bob@example.org"


def test_redact_json_keeps_categories_and_provenance_and_erases_free_text() -> None:
    result = {
        "result_id": "res_1", "task": "summarize_email", "review": "suggest", "email_id": "02s1", "case_id": None,
        "summary": "Ann asks for a refund", "intent": "refund_request", "confidence": 0.9, "verified": False,
        "action_items": [{"text": "Refund Ann", "owner": "billing", "due": None, "quote": "please refund"}],
        "entities": [{"kind": "order_number", "value": "42", "quote": "invoice 42"}],
        "factors": [{"name": "team_size", "direction": "up", "weight": 0.4, "evidence": "20 seats"}],
        "skipped": {"reason": "empty_input", "detail": "the body is empty"},
        "provenance": {"model": "gpt-4o-mini", "source_event_id": "evt-1", "tokens_in": 10},
    }  # fmt: skip
    erased = redact_json(result, marker=ERASED, keep_ids=False)
    assert erased == result | {
        "email_id": ERASED, "summary": ERASED,
        "action_items": [{"text": ERASED, "owner": ERASED, "due": None, "quote": ERASED}],
        "entities": [{"kind": "order_number", "value": ERASED, "quote": ERASED}],
        "factors": [{"name": "team_size", "direction": "up", "weight": 0.4, "evidence": ERASED}],
        "skipped": {"reason": "empty_input", "detail": ERASED},
    }  # fmt: skip
    purged = redact_json(result, marker=PURGED, keep_ids=True)
    assert purged["email_id"] == "02s1" and purged["summary"] == PURGED


def test_redact_json_removes_the_subject_from_the_strings_it_keeps() -> None:
    doc = {"category": "ann.lee@example.com", "changed_fields": ["SuppliedEmail"]}
    assert redact_json(doc, marker=ERASED, keep_ids=False, subject=ANN) == {
        "category": ERASED,
        "changed_fields": ["SuppliedEmail"],
    }


def test_redact_row_keeps_nulls_array_lengths_and_on_purge_the_ids() -> None:
    spec = next(s for s in REDACTED_TABLES if s.name == "fact_email_summary")
    row = {"result": {"summary": "x"}, "summary": "x", "grounding_failures": ["a", "b"], "subject": "02s1",
           "email_id": "02s1", "case_id": None}  # fmt: skip
    assert redact_row(spec, row, marker=ERASED, keep_ids=False) == {
        "result": {"summary": ERASED}, "summary": ERASED, "grounding_failures": [ERASED, ERASED],
        "subject": ERASED, "email_id": ERASED, "case_id": None,
    }  # fmt: skip
    assert redact_row(spec, row, marker=PURGED, keep_ids=True) == {
        "result": {"summary": PURGED}, "summary": PURGED, "grounding_failures": [PURGED, PURGED],
    }  # fmt: skip


@pytest.mark.parametrize(("value", "days"), [("30d", 30), ("30", 30), (" 7D ", 7), (1, 1)])
def test_parse_retention(value: str | int, days: int) -> None:
    assert parse_retention(value) == days


@pytest.mark.parametrize("value", ["0d", "0", "-1d", "2w", "30 days", "soon"])
def test_parse_retention_refuses_other_periods(value: str) -> None:
    with pytest.raises(InvalidRetention):
        parse_retention(value)


def test_retention_days_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CRMPILOT_RETENTION_DAYS", raising=False)
    assert RetentionSettings().retention_days is None
    monkeypatch.setenv("CRMPILOT_RETENTION_DAYS", "90")
    assert RetentionSettings().retention_days == 90


def test_a_report_sums_and_serialises_its_counts() -> None:
    report = PrivacyReport("erase", dry_run=True, subject_hash=ANN.sha256)
    report.count("warehouse.raw_events").anonymised += 3
    report.count("llm.llm_cache").deleted += 2
    assert report.total == 5
    assert json.loads(json.dumps(report.to_json()))["tables"] == {
        "llm.llm_cache": {"anonymised": 0, "deleted": 2}, "warehouse.raw_events": {"anonymised": 3, "deleted": 0},
    }  # fmt: skip


# --- the CLI without a database ----------------------------------------------------------------


def test_erase_refuses_a_bad_subject_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["erase", "--subject", "ann"])
    assert result.exit_code == 2
    assert "neither an e-mail address nor a record id" in result.output


def test_purge_without_a_period_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMPILOT_RETENTION_DAYS", raising=False)
    result = CliRunner().invoke(app, ["db", "purge"])
    assert result.exit_code == 2
    assert "CRMPILOT_RETENTION_DAYS" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["erase", "--subject", "ann@example.com", "--dry-run"],
        ["db", "purge", "--older-than", "30d"],
    ],
)
def test_an_unreachable_database_exits_2_without_the_password(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", "postgresql://crmpilot:secret-pw@127.0.0.1:1/crmpilot")
    monkeypatch.delenv("CRMPILOT_LLM_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "CRMPILOT_DATABASE_URL" in result.output
    assert "secret-pw" not in result.output
    assert "ann@example.com" not in result.output


def test_crm_revert_skips_the_audit_entries_of_an_erased_person() -> None:
    from crmpilot.crm.revert import select_applied
    from crmpilot.warehouse import CrmAuditEntry, InMemoryWarehouse

    wh = InMemoryWarehouse()
    wh.record_crm_audit([
        CrmAuditEntry("res_1", "Case", ERASED, "AI_Category__c", ERASED, ERASED, "applied", run_id="run-1"),
        CrmAuditEntry("res_2", "Case", "500A1", "AI_Category__c", None, "Billing", "applied", run_id="run-1"),
    ])  # fmt: skip
    assert [e.record_id for e in select_applied(wh, run_id="run-1")] == ["500A1"]
