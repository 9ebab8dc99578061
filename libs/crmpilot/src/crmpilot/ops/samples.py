"""Events for ``crmpilot produce``: sample source events, or events read from a JSON Lines file.

Samples are plausible CRM/ERP source events (cases, emails, requests) made
from a few fixed texts with a seeded random choice; every sample has a new
event id, so the pipeline treats it as new. A file line is either a whole
envelope (``specversion``, ``type``, ``data``…), checked exactly as a consumer
would decode it, or the ``data`` of an event of the ``--type`` given. The
Kafka key (``subject``) is the entity's id, as the CRM source sets it.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from crmpilot.events import (
    CaseEvent,
    EmailReceived,
    Envelope,
    PoisonMessage,
    RequestSubmitted,
    decode,
    latest_version,
    model_for,
)

from .errors import EventFileError

__all__ = ["SAMPLE_TYPES", "SOURCE", "sample_events", "load_events"]

SOURCE = "crmpilot/ops-produce"

_CASES = (
    (
        "Cannot log in after password reset",
        "Since this morning I get 'invalid credentials' although I reset my password twice.",
    ),
    ("Invoice charged twice", "Our credit card was charged twice for the March invoice. Please refund the duplicate."),
    (
        "API returns 500 on order export",
        "The /orders/export endpoint fails with HTTP 500 for all requests since the last release.",
    ),
    ("How do I add a user?", "We hired two people. Where do I invite them to our workspace?"),
    ("Cancel my subscription", "We are moving to another vendor, please cancel at the end of the term."),
    ("Dashboard very slow", "Reports take more than a minute to load for our team in Europe."),
    ("Data export missing columns", "The CSV export no longer contains the region and owner columns."),
    ("Feature request: dark mode", "Several of our agents asked for a dark theme in the console."),
)
_EMAILS = (
    (
        "Re: delivery delayed",
        "Hello, the parts we ordered last week have not arrived. Can you give us a new date? We need them by Friday.",
    ),
    (
        "Question about pricing",
        "Hi, could you send us the price list for 50 seats and tell us whether annual billing has a discount?",
    ),
    (
        "Complaint",
        "This is the third time the service was down this month. We expect a credit and a call from your manager.",
    ),
    ("Thanks!", "Just wanted to say the new release fixed our sync problem. Great work from your support team."),
)
_REQUESTS = (
    (
        "lead",
        "Acme Logistics",
        "DE",
        1200,
        None,
        "Evaluating CRM automation for 40 support agents, budget approved for Q3.",
    ),
    ("quote", "Northwind Traders", "US", 85, Decimal("18000"), "Quote for 25 seats, annual plan, with onboarding."),
    ("purchase", "Contoso Ltd", "GB", 300, Decimal("5200"), "Purchase order for the analytics add-on."),
    (
        "credit",
        "Fabrikam GmbH",
        "AT",
        40,
        Decimal("75000"),
        "Credit line request for hardware purchases, company founded 2019.",
    ),
)


def _id(prefix: str, rng: random.Random) -> str:
    return f"{prefix}{rng.getrandbits(48):012X}"


def _case(rng: random.Random, updated: bool) -> CaseEvent:
    subject, description = rng.choice(_CASES)
    return CaseEvent(
        case_id=_id("500SMP", rng),
        subject=subject,
        description=description,
        origin=rng.choice(("Email", "Web", "Phone", "Chat")),
        changed_fields=("Description",) if updated else (),
        last_modified=datetime.now(UTC),
    )


def _email(rng: random.Random) -> EmailReceived:
    subject, body = rng.choice(_EMAILS)
    return EmailReceived(
        email_id=_id("02sSMP", rng),
        case_id=_id("500SMP", rng),
        from_address="customer@example.com",
        to_address="support@example.com",
        subject=subject,
        body=body,
        received_at=datetime.now(UTC),
    )


def _request(rng: random.Random) -> RequestSubmitted:
    kind, company, country, employees, amount, description = rng.choice(_REQUESTS)
    return RequestSubmitted(
        request_id=_id("00QSMP", rng),
        kind=kind,  # type: ignore[arg-type]  # one of the four literals above
        company=company,
        country=country,
        employees=employees,
        amount=amount,
        currency=None if amount is None else "EUR",
        description=description,
    )


_MAKERS: dict[str, Callable[[random.Random], BaseModel]] = {
    "crm.case.created": lambda rng: _case(rng, False),
    "crm.case.updated": lambda rng: _case(rng, True),
    "crm.email.received": _email,
    "erp.request.submitted": _request,
}
SAMPLE_TYPES = tuple(_MAKERS)


def _subject(data: BaseModel) -> str:
    """The entity the event is about: the email, the request, else the case."""
    for name in ("email_id", "request_id", "case_id"):
        value = getattr(data, name, None)
        if value:
            return str(value)
    raise EventFileError(f"{type(data).__name__} has no entity id to key it by")


def _envelope(event_type: str, data: BaseModel) -> Envelope[Any]:
    return Envelope[Any](
        id=str(uuid.uuid4()), source=SOURCE, type=event_type, schemaversion=latest_version(event_type),
        subject=_subject(data), data=data,
    )  # fmt: skip


def sample_events(event_type: str, n: int, *, seed: int | None = None) -> list[Envelope[Any]]:
    """``n`` sample events of ``event_type`` (one of :data:`SAMPLE_TYPES`)."""
    maker = _MAKERS.get(event_type)
    if maker is None:
        raise EventFileError(f"no samples for {event_type!r}; samples exist for {', '.join(SAMPLE_TYPES)}")
    rng = random.Random(seed)
    return [_envelope(event_type, maker(rng)) for _ in range(n)]


def load_events(path: Path, event_type: str | None) -> list[Envelope[Any]]:
    """Every event of a JSON Lines file (blank lines skipped); raises :class:`EventFileError` naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(f"cannot read {path}: {exc}") from exc
    events: list[Envelope[Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and {"specversion", "type", "data"} <= obj.keys():
                events.append(decode(line.encode("utf-8")))
                continue
            if event_type is None:
                raise EventFileError("a line with only the event data needs --type")
            model = model_for(event_type, latest_version(event_type))
            events.append(_envelope(event_type, model.model_validate(obj)))
        except (json.JSONDecodeError, ValidationError, PoisonMessage, EventFileError) as exc:
            raise EventFileError(f"{path}:{number}: {exc}") from exc
    return events
