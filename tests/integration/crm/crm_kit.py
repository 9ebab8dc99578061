"""Helpers of the CRM integration tests: sandbox records, results, the adapter."""

from __future__ import annotations

from typing import Any

from sandbox_support import Sandbox
from simple_salesforce.api import Salesforce

from crmpilot.crm.connect import SalesforceSettings, salesforce_crm
from crmpilot.crm.salesforce import SalesforceCRM
from tests import resultkit


def salesforce_settings(sb: Sandbox) -> SalesforceSettings:
    return SalesforceSettings(instance_url=sb.url, ca_bundle=sb.ca)


def adapter(sb: Sandbox, **kwargs: Any) -> SalesforceCRM:
    return salesforce_crm(salesforce_settings(sb), **kwargs)


def human(sb: Sandbox) -> Salesforce:
    """simple-salesforce as the support agent: a person's edits."""
    return sb.client(sb.settings.human_session_token.get_secret_value())


def create_cases(sb: Sandbox, n: int, **fields: Any) -> list[str]:
    """``n`` cases created by the agent, 200 per sObject Collections call."""
    sf = human(sb)
    ids: list[str] = []
    for start in range(0, n, 200):
        records = [
            {"attributes": {"type": "Case"}, "Subject": f"case {i}", "Origin": "Web", **fields}
            for i in range(start, min(n, start + 200))
        ]
        results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
        ids += [r["id"] for r in results or ()]
    return ids


classification = resultkit.live_classification
