"""Helpers of the CRM integration tests: sandbox records, results, the adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandbox_support import Sandbox
from simple_salesforce.api import Salesforce

from crmpilot.crm.connect import SalesforceSettings, salesforce_crm
from crmpilot.crm.salesforce import SalesforceCRM
from crmpilot.events import Provenance, TicketClassification, result_id_for


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


def classification(
    case_id: str, *, category: str = "Payments", event: str | None = None, event_time: datetime | None = None
) -> TicketClassification:
    event = event or f"evt-{case_id}-{category}"
    return TicketClassification(
        result_id=result_id_for(event, "classify_ticket", "v1"),
        review="auto_apply",
        case_id=case_id,
        category=category,
        priority="High",
        sentiment="negative",
        language="en",
        queue="billing",
        confidence={"category": 0.93},
        rationale="declined",
        provenance=Provenance(
            provider="local",
            model="m",
            prompt_id="classify_ticket",
            prompt_version="v1",
            prompt_hash="h",
            input_hash="i",
            tokens_in=1,
            tokens_out=0,
            cost_usd=Decimal(0),
            latency_ms=1,
            attempts=1,
            trace_id="a" * 32,
            source_topic="crm.case.events",
            source_partition=0,
            source_offset=0,
            source_event_id=event,
            event_time=event_time or datetime.now(UTC),
            processed_at=datetime.now(UTC),
        ),
    )
