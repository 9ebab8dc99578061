"""The CRM port: the two things crmpilot needs from a CRM, and their value types.

Adapters: :mod:`crmpilot.crm.salesforce` (Salesforce REST through
simple-salesforce) and :mod:`crmpilot.crm.fake` (in memory, for unit tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["RecordRef", "RecordState", "RecordUpdate", "UpdateOutcome", "CRM"]


@dataclass(frozen=True, slots=True)
class RecordRef:
    sobject: str
    record_id: str


@dataclass(frozen=True, slots=True)
class RecordState:
    """What the CRM holds now: the fields asked for plus who touched it last."""

    ref: RecordRef
    fields: Mapping[str, Any]
    last_modified: datetime
    last_modified_by: str


@dataclass(frozen=True, slots=True)
class RecordUpdate:
    ref: RecordRef
    values: Mapping[str, Any]
    unmodified_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """Per-record result of a batch update. ``code`` is the CRM's error code on failure."""

    ref: RecordRef
    ok: bool
    code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = field(default=())


class CRM(Protocol):
    """Reads record state and applies field updates."""

    @property
    def user_id(self) -> str:
        """The id of the user the adapter writes as (the integration user)."""
        ...

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
        """Current state of the given records; ids missing from the result do not exist."""
        ...

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        """Apply updates, each independently (one failure does not roll back others)."""
        ...
