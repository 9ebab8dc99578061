"""Revert against the CRM sandbox and the warehouse: before-values back, a person's later change kept, dry run inert,
CLI."""

from __future__ import annotations

import json
from typing import cast

import pytest
from crm_kit import adapter, classification, create_cases, human, salesforce_settings
from sandbox_support import Sandbox
from typer.testing import CliRunner

from crm_sandbox.org import INTEGRATION_USER
from crmpilot.cli.crm import app
from crmpilot.crm import write_back
from crmpilot.crm.revert import revert, select_applied
from crmpilot.crm.writeback import AuditLog
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse
from tests.sfkit import sobject

pytestmark = pytest.mark.integration

BEFORE = {"AI_Category__c": "Other", "AI_Priority__c": "Low", "AI_Confidence__c": 0.2}


def _applied_run(sb: Sandbox, warehouse: PostgresWarehouse, n: int = 3, run_id: str = "crm_writer-it") -> list[str]:
    cases = create_cases(sb, n, **BEFORE)
    # cast: AuditLog.crm_audit takes statuses: Sequence[str], the warehouse's Sequence[AuditStatus] (narrower)
    reports = write_back([classification(c) for c in cases], adapter(sb), cast(AuditLog, warehouse), run_id=run_id)
    assert {r.status for r in reports} == {"applied"}
    return cases


def test_revert_restores_before_values_and_keeps_a_persons_later_change(
    sb: Sandbox, warehouse: PostgresWarehouse
) -> None:
    cases = _applied_run(sb, warehouse)
    sobject(human(sb), "Case").update(cases[0], {"AI_Category__c": "Billing"})
    crm = adapter(sb)

    report = revert(select_applied(warehouse, run_id="crm_writer-it"), crm, warehouse, run_id="revert-it")

    reader = sb.client()
    edited, untouched = sobject(reader, "Case").get(cases[0]), sobject(reader, "Case").get(cases[1])
    assert edited["AI_Category__c"] == "Billing", "the person's value stays"
    assert (edited["AI_Priority__c"], untouched["AI_Category__c"], untouched["AI_Priority__c"]) == (
        "Low",
        "Other",
        "Low",
    )
    assert untouched["AI_Confidence__c"] == 0.2 and untouched["AI_Result_Id__c"] is None
    assert untouched["LastModifiedById"] == INTEGRATION_USER.id
    [kept] = report.with_status("changed_since")
    assert (kept.record_id, kept.field, kept.current) == (cases[0], "AI_Category__c", "Billing")
    assert report.api_calls == 2, "one read and one sObject Collections write for the three cases"
    assert [(e.record_id, e.field) for e in select_applied(warehouse, run_id="crm_writer-it")] == [
        (cases[0], "AI_Category__c")
    ]
    recorded = warehouse.crm_audit(run_id="revert-it", statuses=("reverted",))
    assert len(recorded) == report.count("reverted")
    assert {(e.before_value, e.after_value) for e in recorded if e.field == "AI_Category__c"} == {("Payments", "Other")}


def test_dry_run_changes_nothing(sb: Sandbox, warehouse: PostgresWarehouse) -> None:
    cases = _applied_run(sb, warehouse)
    audit_before = warehouse.crm_audit(run_id="crm_writer-it")
    modified = sobject(sb.client(), "Case").get(cases[1])["SystemModstamp"]

    report = revert(
        select_applied(warehouse, run_id="crm_writer-it"), adapter(sb), warehouse, run_id="revert-dry", dry_run=True
    )

    assert report.count("would_revert") == len(report.fields) > 0
    assert report.api_calls == 1, "a read only"
    after = sobject(sb.client(), "Case").get(cases[1])
    assert (after["AI_Category__c"], after["SystemModstamp"]) == ("Payments", modified)
    assert warehouse.crm_audit(run_id="crm_writer-it") == audit_before
    assert warehouse.crm_audit(run_id="revert-dry", statuses=("reverted",)) == []


def test_cli_revert_and_status(
    sb: Sandbox, warehouse: PostgresWarehouse, crm_db: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _applied_run(sb, warehouse, n=2)
    settings = salesforce_settings(sb)
    monkeypatch.setenv("CRMPILOT_SALESFORCE_INSTANCE_URL", str(settings.instance_url))
    monkeypatch.setenv("CRMPILOT_SALESFORCE_CA_BUNDLE", str(settings.ca_bundle))
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", crm_db.url.get_secret_value())
    runner = CliRunner()

    dry = runner.invoke(app, ["revert", "--since", "1h", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"] == {"would_revert": 2 * 7}, "7 audited fields per case"

    done = runner.invoke(app, ["revert", "--result", ",".join(classification(c).result_id for c in cases)])
    assert done.exit_code == 0, done.output
    assert "reverted 14 field(s) on 2 record(s)" in done.stdout
    assert sobject(sb.client(), "Case").get(cases[0])["AI_Category__c"] == "Other"

    again = runner.invoke(app, ["revert", "--since", "1h"])
    assert again.exit_code == 0 and "nothing to revert" in again.stdout

    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    org = json.loads(status.stdout)
    assert (org["user_id"], org["username"], org["login"]) == (
        INTEGRATION_USER.id,
        INTEGRATION_USER.username,
        "session",
    )
    assert org["api_limit"] == sb.settings.api_daily_limit and 0 < org["api_used"] <= org["api_limit"]


def test_cli_fails_clearly_when_the_crm_cannot_be_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_SALESFORCE_INSTANCE_URL", "https://127.0.0.1:9")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    assert "CRMUnavailable" in result.stderr and "CRMPILOT_SALESFORCE_" in result.stderr
