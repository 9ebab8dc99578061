"""The three AI tasks: versioned prompts, closed output models, task inputs from events.

Each task is a :class:`~crmpilot.llm.base.TaskSpec` (name, prompt, output model)
plus a function building its input from the source event. Any provider (OpenAI,
local) runs a spec and returns the spec's output model; a service adds ids,
provenance and the review decision to make the result event.
"""

from crmpilot.tasks.classify_ticket import (
    CLASSIFY_TICKET,
    EscalationReason,
    FieldConfidence,
    TicketClassificationOutput,
    classify_ticket_spec,
)
from crmpilot.tasks.classify_ticket import payload_for as ticket_payload
from crmpilot.tasks.score_request import (
    SCORE_REQUEST,
    Band,
    RequestScoreOutput,
    RiskFlag,
    ScoreFactorOutput,
    band_for,
    field_evidence,
)
from crmpilot.tasks.score_request import payload_for as request_payload
from crmpilot.tasks.summarize_email import (
    SUMMARIZE_EMAIL,
    ActionItemOutput,
    EmailSummaryOutput,
    EntityOutput,
    Intent,
    Urgency,
    grounding_failures,
)
from crmpilot.tasks.summarize_email import payload_for as email_payload
from crmpilot.tasks.taxonomy import (
    DEFAULT_CATEGORIES,
    PRIORITIES,
    SENTIMENTS,
    Category,
    Priority,
    Sentiment,
    category_names,
    queue_for,
)

__all__ = [
    "CLASSIFY_TICKET",
    "DEFAULT_CATEGORIES",
    "PRIORITIES",
    "SCORE_REQUEST",
    "SENTIMENTS",
    "SUMMARIZE_EMAIL",
    "ActionItemOutput",
    "Band",
    "Category",
    "EmailSummaryOutput",
    "EntityOutput",
    "EscalationReason",
    "FieldConfidence",
    "Intent",
    "Priority",
    "RequestScoreOutput",
    "RiskFlag",
    "ScoreFactorOutput",
    "Sentiment",
    "TicketClassificationOutput",
    "Urgency",
    "band_for",
    "category_names",
    "classify_ticket_spec",
    "email_payload",
    "field_evidence",
    "grounding_failures",
    "queue_for",
    "request_payload",
    "ticket_payload",
]
