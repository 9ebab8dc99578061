"""Audited values against what the CRM holds now: the check behind revert and feedback."""

from __future__ import annotations

from pathlib import Path

from crmpilot.crm.feedback import multi_select_fields
from crmpilot.crm.values import same_value, to_audit_text
from tests.speckit import churn_text, locked


def test_a_multi_select_value_is_the_same_in_any_order_the_org_returns_it() -> None:
    written = to_audit_text("outages;competitor")
    assert same_value("competitor;outages", written, multi_select=True)  # an org may return them in its own order
    assert not same_value("competitor", written, multi_select=True)
    assert not same_value("competitor;outages;price", written, multi_select=True)


def test_text_with_semicolons_is_text_a_persons_reordering_is_a_change() -> None:
    written = to_audit_text("+ budget stated; - free mail domain")  # the built-in lead score reasons
    assert not same_value("- free mail domain; + budget stated", written)
    assert same_value("+ budget stated; - free mail domain", written)


def test_numbers_booleans_and_text_compare_as_the_audit_wrote_them() -> None:
    assert same_value(0.9, to_audit_text(0.9)) and same_value(87, "87.0") and same_value(True, "true")
    assert not same_value("Billing", "Refund") and same_value(None, None) and not same_value("", None)


SIGNALS = """\
  churn_signals:
    type: multi_enum
    values: {outages: outages, price: too expensive}
"""


def test_the_multi_select_fields_are_those_a_multi_enum_output_writes(tmp_path: Path) -> None:
    text = churn_text(outputs=SIGNALS).replace(
        "    churn_reason: Churn_Reason__c\n",
        "    churn_reason: Churn_Reason__c\n    churn_signals: Churn_Signals__c\n",
    )
    assert multi_select_fields(locked(tmp_path, text)) == {("Opportunity", "Churn_Signals__c")}
