"""Audited values against what the CRM holds now: the check behind revert and feedback."""

from __future__ import annotations

from crmpilot.crm.values import same_value, to_audit_text


def test_a_multi_select_value_is_the_same_in_any_order_the_org_returns_it() -> None:
    written = to_audit_text("outages;competitor")
    assert same_value("competitor;outages", written)  # an org may return the values in its own order
    assert not same_value("competitor", written) and not same_value("competitor;outages;price", written)


def test_numbers_booleans_and_text_compare_as_the_audit_wrote_them() -> None:
    assert same_value(0.9, to_audit_text(0.9)) and same_value(87, "87.0") and same_value(True, "true")
    assert not same_value("Billing", "Refund") and same_value(None, None) and not same_value("", None)
