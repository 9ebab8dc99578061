"""`crmpilot enrichments check --org` against the CRM sandbox started with
CRMPILOT_ENRICHMENTS_DIR=examples/enrichments.

The sandbox then serves what the example specs write (Opportunity.Churn_Risk__c,
Case.Reason with ticket_type's values, ...), so the examples pass and a spec
writing a field the org lacks is reported at its line, through the real
simple-salesforce describe calls.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from crm_kit import salesforce_settings
from sandbox_support import Sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from typer.testing import CliRunner

from crmpilot.cli.main import app
from crmpilot.enrichments.orgcheck import org_describe, org_problems
from crmpilot.enrichments.registry import LOCK_FILE, load_registry
from tests.sfkit import first_error, sobject

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"


@pytest.fixture(scope="module", autouse=True)
def _sandbox_serves_the_examples() -> Iterator[None]:
    """Set before this module's sandbox (conftest, module scope) starts: autouse fixtures of a scope run first, and it
    reads the specs at start."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
        yield


def _line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if fragment in line)


def test_the_example_specs_pass_against_the_sandbox(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    describe = org_describe(salesforce_settings(sb))
    registry = load_registry([EXAMPLES])
    assert {name: org_problems(entry, describe) for name, entry in registry.entries.items()} == {
        "score_request": [],  # the built-in spec fits the org's Lead
        "churn_risk": [],
        "ticket_type": [],
    }

    monkeypatch.setenv("CRMPILOT_SALESFORCE_INSTANCE_URL", sb.url)
    monkeypatch.setenv("CRMPILOT_SALESFORCE_CA_BUNDLE", str(sb.ca))
    result = CliRunner().invoke(app, ["enrichments", "check", "--org"])
    assert result.exit_code == 0, result.output
    assert "ok churn_risk (" in result.output and "Opportunity in the org" in result.output
    assert "ok ticket_type (" in result.output


def test_a_field_or_value_the_org_lacks_is_reported_at_its_line(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(EXAMPLES / LOCK_FILE, tmp_path / LOCK_FILE)
    churn = tmp_path / "churn_risk.yaml"
    churn.write_text(
        (EXAMPLES / "churn_risk.yaml")
        .read_text()
        .replace("churn_reason: Churn_Reason__c", "churn_reason: Churn_Summary__c")
    )
    tickets = tmp_path / "ticket_type.yaml"
    tickets.write_text((EXAMPLES / "ticket_type.yaml").read_text().replace("object: Case", "object: Ticket__c"))
    registry = load_registry([], files=[churn, tickets])
    describe = org_describe(salesforce_settings(sb))

    [missing] = org_problems(registry.entry("churn_risk"), describe)
    assert (missing.file, missing.line) == (str(churn), _line_of(churn, "churn_reason: Churn_Summary__c"))
    assert (
        missing.reason
        == "crm.fields.churn_reason: Opportunity has no field 'Churn_Summary__c' (for output churn_reason)"
    )
    [no_object] = org_problems(registry.entry("ticket_type"), describe)  # the describe answered 404
    assert no_object.line == _line_of(tickets, "object: Ticket__c") and "no object 'Ticket__c'" in no_object.reason

    monkeypatch.setenv("CRMPILOT_SALESFORCE_INSTANCE_URL", sb.url)
    monkeypatch.setenv("CRMPILOT_SALESFORCE_CA_BUNDLE", str(sb.ca))
    result = CliRunner().invoke(app, ["enrichments", "check", "--org", str(churn)])
    assert result.exit_code == 1
    assert f"{churn}:{missing.line}: {missing.reason}" in result.output


def test_an_enum_value_the_sandbox_picklist_lacks(sb: Sandbox, tmp_path: Path) -> None:
    spec = tmp_path / "ticket_type.yaml"
    spec.write_text(
        (EXAMPLES / "ticket_type.yaml")
        .read_text()
        .replace(
            "      Other: anything else\n",
            "      Warranty: a repair or replacement under warranty\n      Other: anything else\n",
        )
    )
    [problem] = org_problems(
        load_registry([], files=[spec]).entry("ticket_type"), org_describe(salesforce_settings(sb))
    )
    assert problem.line == _line_of(spec, "Warranty:")
    assert problem.reason.startswith(
        "outputs.case_reason.values: the picklist Case.Reason has no active value 'Warranty'"
    )


def test_the_sandbox_refuses_what_the_org_would(sf: Salesforce) -> None:
    opp = sobject(sf, "Opportunity").create(
        {"Name": "Renewal 2027", "StageName": "Negotiation/Review", "CloseDate": "2027-01-31"}
    )["id"]
    sobject(sf, "Opportunity").update(opp, {"Churn_Risk__c": "medium", "AI_Churn_Review_Required__c": True})
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sobject(sf, "Opportunity").update(opp, {"Churn_Risk__c": "severe"})
    assert first_error(refused.value)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sobject(sf, "Opportunity").get(opp)["Churn_Risk__c"] == "medium"
