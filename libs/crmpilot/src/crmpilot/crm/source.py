"""CRM → events: turn Case records read from the CRM into ``crm.case.*`` events.

This is the polling form of a CRM source connector (Change Data Capture is the
streaming form): SOQL for Cases modified after a watermark, one event per
record, keyed by case id. Records last changed by the integration user are our
own write-backs and are skipped, so enrichment never loops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from simple_salesforce.api import Salesforce

from crmpilot.events import CaseEvent, Envelope

__all__ = ["CASE_FIELDS", "case_query", "case_events", "fetch_case_records"]

CASE_FIELDS = (
    "Id",
    "Subject",
    "Description",
    "Origin",
    "AccountId",
    "SuppliedEmail",
    "LastModifiedDate",
    "LastModifiedById",
    "CreatedDate",
)


def case_query(since: datetime | None = None, limit: int = 2000, *, open_only: bool = False) -> str:
    """SOQL for the cases changed after ``since`` (all when ``None``); ``open_only``: not closed ones."""
    conditions = [f"LastModifiedDate > {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"] if since else []
    if open_only:
        conditions.append("IsClosed = false")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {', '.join(CASE_FIELDS)} FROM Case{where} ORDER BY LastModifiedDate LIMIT {limit}"


def fetch_case_records(
    sf: Salesforce, since: datetime | None = None, *, open_only: bool = False
) -> list[dict[str, Any]]:
    return list(sf.query_all_iter(case_query(since, open_only=open_only)))


def _time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def case_events(
    records: Iterable[Mapping[str, Any]], *, source: str, integration_user: str | None = None
) -> list[Envelope[CaseEvent]]:
    """One ``crm.case.created`` or ``crm.case.updated`` event per record."""
    events = []
    for rec in records:
        if integration_user and rec.get("LastModifiedById") == integration_user:
            continue
        modified = _time(rec["LastModifiedDate"])
        created = _time(rec["CreatedDate"]) if rec.get("CreatedDate") else modified
        data = CaseEvent(
            case_id=rec["Id"],
            subject=rec.get("Subject") or "",
            description=rec.get("Description") or "",
            origin=rec.get("Origin"),
            account_id=rec.get("AccountId"),
            contact_email=rec.get("SuppliedEmail"),
            last_modified=modified,
        )
        event_type = "crm.case.created" if created == modified else "crm.case.updated"
        events.append(
            Envelope[CaseEvent](
                source=source, type=event_type, schemaversion=1, subject=rec["Id"], time=modified, data=data
            )
        )
    return events
