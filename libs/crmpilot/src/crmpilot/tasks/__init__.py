"""The built-in AI tasks.

``score_request`` is an enrichment spec shipped in ``specs/`` (loaded by every
registry, see :data:`BUILTIN_SPECS`) with its hooks and local method in
:mod:`crmpilot.tasks.score_request`. ``classify_ticket`` and ``summarize_email`` are
still code: each a :class:`~crmpilot.llm.base.TaskSpec` (name, prompt, output model)
plus a function building its input from the source event; a service adds ids,
provenance and the review decision to make the result event.
"""

from importlib import resources
from pathlib import Path

from crmpilot.tasks.classify_ticket import (
    CLASSIFY_TICKET,
    EscalationReason,
    FieldConfidence,
    TicketClassificationOutput,
    classify_ticket_spec,
)
from crmpilot.tasks.classify_ticket import payload_for as ticket_payload
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

BUILTIN_SPECS = Path(str(resources.files(__package__).joinpath("specs")))
"""The folder of the built-in enrichment specs."""

__all__ = [
    "BUILTIN_SPECS",
    "CLASSIFY_TICKET",
    "DEFAULT_CATEGORIES",
    "PRIORITIES",
    "SENTIMENTS",
    "SUMMARIZE_EMAIL",
    "ActionItemOutput",
    "Category",
    "EmailSummaryOutput",
    "EntityOutput",
    "EscalationReason",
    "FieldConfidence",
    "Intent",
    "Priority",
    "Sentiment",
    "TicketClassificationOutput",
    "Urgency",
    "category_names",
    "classify_ticket_spec",
    "email_payload",
    "grounding_failures",
    "queue_for",
    "ticket_payload",
]
