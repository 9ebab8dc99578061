"""Typed payloads of every event crmpilot reads or writes.

Source events come from the CRM/ERP (``crm.case.*``, ``crm.email.*``,
``erp.request.*``); result events are what the AI services produce
(``ai.ticket.classified``, ``ai.email.summarized``, ``ai.request.scored``).
Every result carries its :class:`Provenance` and a deterministic ``result_id``
(source event id + task + prompt version), the idempotency key of every sink.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CaseEvent",
    "EmailReceived",
    "RequestSubmitted",
    "Provenance",
    "ReviewDecision",
    "TicketClassification",
    "EmailSummary",
    "RequestScore",
    "result_id_for",
]

ReviewDecision = Literal["auto_apply", "suggest", "skip"]

_TEXT_MAX = 32_000


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- source events -------------------------------------------------------------------


class CaseEvent(_Payload):
    """A support case (ticket) was created or updated in the CRM."""

    case_id: str = Field(min_length=1, max_length=40)
    subject: str = Field(default="", max_length=255)
    description: str = Field(default="", max_length=_TEXT_MAX)
    origin: str | None = Field(default=None, max_length=40, description="Email, Web, Phone, Chat")
    account_id: str | None = Field(default=None, max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    is_vip: bool = False
    changed_fields: tuple[str, ...] = Field(default=(), description="on update: the fields the CRM reports as changed")
    last_modified: datetime | None = Field(default=None, description="LastModifiedDate of the record at the source")


class EmailReceived(_Payload):
    """A customer email arrived on a case."""

    email_id: str = Field(min_length=1, max_length=40)
    case_id: str | None = Field(default=None, max_length=40)
    from_address: str = Field(max_length=254)
    to_address: str = Field(default="", max_length=1000)
    subject: str = Field(default="", max_length=998)
    body: str = Field(max_length=_TEXT_MAX)
    received_at: datetime


class RequestSubmitted(_Payload):
    """An incoming request to score: a lead, a quote, a purchase or credit application."""

    request_id: str = Field(min_length=1, max_length=40)
    kind: Literal["lead", "quote", "purchase", "credit"]
    company: str = Field(default="", max_length=255)
    contact_email: str | None = Field(default=None, max_length=254)
    country: str | None = Field(default=None, max_length=80)
    employees: int | None = Field(default=None, ge=0)
    amount: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    description: str = Field(default="", max_length=_TEXT_MAX)


# --- results -------------------------------------------------------------------------


class Provenance(_Payload):
    """How a result was made: enough to audit, reproduce and cost it."""

    provider: str
    model: str
    model_version: str | None = None
    prompt_id: str
    prompt_version: str
    prompt_hash: str
    input_hash: str
    tokens_in: int = Field(ge=0)
    tokens_out: int = Field(ge=0)
    cost_usd: Decimal = Field(ge=0)
    latency_ms: float = Field(ge=0)
    attempts: int = Field(ge=1)
    cache_hit: bool = False
    trace_id: str | None = None
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    source_event_id: str
    event_time: datetime
    processed_at: datetime


class _Result(_Payload):
    result_id: str
    task: str
    review: ReviewDecision
    provenance: Provenance


class TicketClassification(_Result):
    task: Literal["classify_ticket"] = "classify_ticket"
    case_id: str
    category: str
    priority: Literal["Low", "Medium", "High", "Urgent"]
    sentiment: Literal["negative", "neutral", "positive"]
    language: str = Field(description="ISO 639-1 code, or 'und'")
    queue: str
    escalate: bool = False
    escalation_reason: str | None = None
    confidence: dict[str, float] = Field(description="per field, 0..1")
    rationale: str = Field(max_length=1000)


class ActionItem(_Payload):
    text: str
    owner: str | None = None
    due: str | None = None
    quote: str


class EmailSummary(_Result):
    task: Literal["summarize_email"] = "summarize_email"
    email_id: str
    case_id: str | None = None
    summary: str
    intent: str
    sentiment: Literal["negative", "neutral", "positive"]
    urgency: Literal["low", "normal", "high"]
    action_items: tuple[ActionItem, ...] = ()
    verified: bool


class ScoreFactor(_Payload):
    name: str
    direction: Literal["up", "down"]
    weight: float
    evidence: str


class RequestScore(_Result):
    task: Literal["score_request"] = "score_request"
    request_id: str
    kind: str
    score: int = Field(ge=0, le=100)
    band: Literal["cold", "warm", "hot"]
    factors: tuple[ScoreFactor, ...] = ()
    next_action: str


def result_id_for(source_event_id: str, task: str, prompt_version: str) -> str:
    """The deterministic id of a result: the idempotency key of every sink."""
    digest = hashlib.sha256(f"{source_event_id}\x1f{task}\x1f{prompt_version}".encode()).hexdigest()
    return f"res_{digest[:32]}"
