"""Typed payloads of every event crmpilot reads or writes.

Source events come from the CRM/ERP (``crm.case.*``, ``crm.email.*``,
``erp.request.*``, ``crm.record.*``); result events are what the AI services produce
(``ai.ticket.classified``, ``ai.email.summarized``, and ``ai.enrichment.completed`` for every
enrichment, the built-in ``score_request`` on ``ai.request.scored`` included).
Every result carries its :class:`Provenance` and a deterministic ``result_id``
(source event id + task + prompt version), the idempotency key of every sink.

Input limits are part of the result contract: ``truncated_chars`` records what
a token budget cut off (:func:`cut_to_token_budget`), and an input with nothing
to read is answered with a typed :class:`InputSkipped` result (review ``skip``,
no model call, see :meth:`InputSkipped.for_text`) instead of an error loop.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

__all__ = [
    "CaseEvent",
    "EmailReceived",
    "RequestSubmitted",
    "RecordChanged",
    "Provenance",
    "ReviewDecision",
    "SkipReason",
    "InputSkipped",
    "TicketClassification",
    "ActionItem",
    "Entity",
    "EmailSummary",
    "EnrichmentResult",
    "cut_to_token_budget",
    "result_id_for",
]

ReviewDecision = Literal["auto_apply", "suggest", "skip"]
SkipReason = Literal["empty_input", "non_text_input"]

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


class RecordChanged(_Payload):
    """Any CRM/ERP record was created or updated: its object, id and field values.

    The generic source event of declared enrichments (``crm.record.created`` /
    ``crm.record.updated``): an enrichment spec names the fields it reads by path
    (``fields.Description``), so a new object needs no new event type.
    """

    sobject: str = Field(min_length=1, max_length=80, description="the object type, e.g. Opportunity")
    record_id: str = Field(min_length=1, max_length=40)
    fields: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="field values (API names)"
    )
    changed_fields: tuple[str, ...] = Field(default=(), description="on update: the fields the CRM reports as changed")
    last_modified: datetime | None = Field(default=None, description="LastModifiedDate of the record at the source")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if len(self.fields) > 500:
            raise ValueError("a record event holds at most 500 fields")
        for name, value in self.fields.items():
            if isinstance(value, str) and len(value) > _TEXT_MAX:
                raise ValueError(f"field {name} holds {len(value)} characters, the limit is {_TEXT_MAX}")
        return self


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
    attempts: int = Field(ge=0, description="requests made to the model (0: none was asked)")
    cache_hit: bool = False
    trace_id: str | None = None
    confidence_source: Literal["logprobs", "self_report", "local"] | None = Field(
        default=None,
        description="where the confidences come from: the probabilities of the tokens the model wrote, the "
        "model's own report, or the embedded model's scores (none: no model was asked)",
    )
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    source_event_id: str
    event_time: datetime
    processed_at: datetime

    @classmethod
    def without_model_call(
        cls,
        *,
        prompt_id: str,
        prompt_version: str,
        prompt_hash: str,
        input_hash: str,
        trace_id: str | None,
        source_topic: str,
        source_partition: int,
        source_offset: int,
        source_event_id: str,
        event_time: datetime,
        processed_at: datetime,
    ) -> Provenance:
        """The provenance of a result made without asking a model (a skipped input): nothing spent."""
        return cls(
            provider="none",
            model="none",
            prompt_id=prompt_id,
            prompt_version=prompt_version,
            prompt_hash=prompt_hash,
            input_hash=input_hash,
            tokens_in=0,
            tokens_out=0,
            cost_usd=Decimal(0),
            latency_ms=0.0,
            attempts=0,
            trace_id=trace_id,
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            source_event_id=source_event_id,
            event_time=event_time,
            processed_at=processed_at,
        )


_CONTROL = frozenset({"Cc", "Cs", "Co", "Cn"})
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{65,}")
"""A run of base64 / hex / URL-safe characters longer than any word: encoded data, not text.
(Scripts written without spaces, such as Chinese or Thai, never match.)"""


class InputSkipped(_Payload):
    """Why a result was made without a model: its input had nothing to read."""

    reason: SkipReason
    detail: str = Field(max_length=300, description="what was wrong with the input, for a person")

    @classmethod
    def for_text(cls, text: str, *, what: str) -> InputSkipped | None:
        """The skip ``text`` calls for, or None when it is readable text.

        Empty: nothing but whitespace. Non-text: fewer than two letters (in any
        script), more than 5 % control or replacement characters, or mostly
        base64/hex runs longer than a word (an encoded attachment).
        """
        stripped = text.strip()
        if not stripped:
            return cls(reason="empty_input", detail=f"the {what} is empty")
        dense = "".join(stripped.split())
        if sum(c.isalpha() for c in dense) < 2:
            return cls(reason="non_text_input", detail=f"the {what} has no words ({len(dense)} characters, no letters)")
        garbage = sum(c == "\ufffd" or (unicodedata.category(c) in _CONTROL) for c in dense)
        if garbage > 0.05 * len(dense):
            return cls(
                reason="non_text_input",
                detail=f"the {what} is binary: {garbage} of {len(dense)} characters are control or invalid",
            )
        blob = sum(len(run) for run in _BLOB.findall(stripped))
        if blob > 0.5 * len(dense):
            return cls(
                reason="non_text_input",
                detail=f"the {what} is encoded data: {blob} of {len(dense)} characters in runs without spaces",
            )
        return None


def cut_to_token_budget(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> tuple[str, int]:
    """``text`` cut to at most ``max_tokens`` (by ``count_tokens``), at a word boundary; and how many characters were
    cut."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    if count_tokens(text) <= max_tokens:
        return text, 0
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix within the budget
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    space = max(text.rfind(" ", 0, lo + 1), text.rfind("\n", 0, lo + 1))
    kept = text[: space if space > lo * 0.8 else lo].rstrip()
    return kept, len(text) - len(kept)


class _Result(_Payload):
    result_id: str
    task: str
    review: ReviewDecision
    provenance: Provenance
    truncated_chars: int = Field(
        default=0, ge=0, description="characters of the input the token budget cut off; 0 when read whole"
    )
    skipped: InputSkipped | None = Field(
        default=None, description="set when the input had nothing to read; no model was asked"
    )

    @model_validator(mode="after")
    def _skipped_is_not_applied(self) -> Self:
        if self.skipped is not None and self.review != "skip":
            raise ValueError("a result for a skipped input must have review 'skip'")
        return self


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
    quote: str = Field(description="the sentence of the email that states it")


class Entity(_Payload):
    kind: str = Field(description="date, amount or order_number")
    value: str
    quote: str = Field(description="the sentence of the email that contains the value")


class EmailSummary(_Result):
    task: Literal["summarize_email"] = "summarize_email"
    email_id: str
    case_id: str | None = None
    summary: str
    intent: str
    sentiment: Literal["negative", "neutral", "positive"]
    urgency: Literal["low", "normal", "high"]
    action_items: tuple[ActionItem, ...] = ()
    entities: tuple[Entity, ...] = ()
    confidence: float = Field(default=0.0, ge=0, le=1, description="confidence in the intent")
    verified: bool = Field(description="every quote and entity value was found verbatim in the (redacted) email")
    grounding_failures: tuple[str, ...] = Field(default=(), description="the quotes and values not found in the email")

    @model_validator(mode="after")
    def _unverified_is_never_applied(self) -> Self:
        if self.verified == bool(self.grounding_failures):
            raise ValueError("verified must be true exactly when there are no grounding failures")
        if not self.verified and self.review == "auto_apply":
            raise ValueError("an unverified summary cannot be auto-applied")
        return self


class QuotedItem(_Payload):
    """One item of a quotes output: what it says and the verbatim sentence of the input that says it."""

    text: str = Field(max_length=4000)
    quote: str = Field(max_length=4000)


ItemValue = StrictBool | StrictInt | StrictFloat | StrictStr | None
OutputValue = Annotated[
    StrictBool
    | StrictInt
    | StrictFloat
    | StrictStr
    | tuple[StrictStr, ...]
    | tuple[QuotedItem, ...]
    | tuple[dict[str, ItemValue], ...]
    | None,
    Field(union_mode="left_to_right"),
]
"""A declared output's value: a vocabulary value or text, a boolean, a number, vocabulary values (a multi_enum),
quoted items, or structured items (an ``items`` output: each a mapping of its fields); the first that fits."""


class EnrichmentResult(_Result):
    """The answer of a declared enrichment (``ai.enrichment.completed``): its outputs, each with its own confidence and review.

    ``outputs`` holds the spec's output fields as validated against the spec (closed
    vocabularies, bounds, lengths); ``field_review`` the decision of each, and
    ``review`` the whole result's: ``skip`` when no field is to be written,
    ``auto_apply`` when every written field is, else ``suggest``. ``record_id`` is
    the record the result is about: with a CRM target the record written (the
    spec's ``crm.record_id``), else the spec's ``source.key``; the Kafka key and
    the envelope's subject are always ``source.key``. ``to_crm`` is false for a
    record the spec's ``crm.where`` leaves out (and without a CRM target): nothing is
    written for it.
    """  # noqa: E501 - the model's docstring is its published JSON schema's description (schemas/)

    task: str = Field(min_length=1, max_length=64, description="the enrichment's name")
    enrichment_version: int = Field(ge=1)
    record_id: str = Field(min_length=1, max_length=200)
    to_crm: bool = Field(
        default=True,
        description="false when the spec has no CRM target or its crm.where leaves this record out: not written",
    )
    outputs: dict[str, OutputValue] = Field(default_factory=dict, description="per output field: its validated value")
    confidence: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="per output field, 0..1"
    )
    field_review: dict[str, ReviewDecision] = Field(default_factory=dict)
    review_reasons: dict[str, str] = Field(
        default_factory=dict, description="per field held back: why (low_confidence, not_grounded)"
    )
    grounding_failures: tuple[str, ...] = Field(
        default=(), description="extracted text not found verbatim in the input"
    )

    @model_validator(mode="after")
    def _figures_name_outputs(self) -> Self:
        """Every per-field confidence, decision and reason is of an output the result holds."""
        for name, figures in (
            ("confidence", self.confidence),
            ("field_review", self.field_review),
            ("review_reasons", self.review_reasons),
        ):
            if stray := sorted(set(figures) - set(self.outputs)):
                raise ValueError(f"{name} names {', '.join(stray[:5])}, which are not outputs of this result")
        return self


def result_id_for(source_event_id: str, task: str, prompt_version: str) -> str:
    """The deterministic id of a result: the idempotency key of every sink."""
    digest = hashlib.sha256(f"{source_event_id}\x1f{task}\x1f{prompt_version}".encode()).hexdigest()
    return f"res_{digest[:32]}"
