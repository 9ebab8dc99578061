"""The CRM ports: what crmpilot needs from a CRM, and their value types.

:class:`CRM` reads record state and applies field updates (the writer, revert);
:class:`ChangeFeed` lists records changed since a time (the CRM source).
Adapters: :mod:`crmpilot.crm.salesforce` (Salesforce REST through
simple-salesforce) and :mod:`crmpilot.crm.fake` (in memory, for unit tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["RecordRef", "RecordState", "RecordUpdate", "UpdateOutcome", "CRM", "ChangedRecord", "ChangeFeed"]


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

    @property
    def api_calls(self) -> int:
        """API calls made so far (Salesforce counts them against a daily limit)."""
        ...

    def fetch(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, RecordState]:
        """Current state of the given records; ids missing from the result do not exist."""
        ...

    def update(self, updates: Sequence[RecordUpdate]) -> list[UpdateOutcome]:
        """Apply updates, each independently (one failure does not roll back others)."""
        ...


@dataclass(frozen=True, slots=True)
class ChangedRecord:
    """A record as a change poll reads it: the fields asked for and its system stamps."""

    ref: RecordRef
    fields: Mapping[str, Any]
    created: datetime
    last_modified: datetime
    last_modified_by: str
    modstamp: datetime
    """``SystemModstamp``: moves on every change, also on system-made ones."""


class ChangeFeed(Protocol):
    """Lists records by change time, oldest first."""

    @property
    def user_id(self) -> str:
        """The integration user: changes made as this user are crmpilot's own."""
        ...

    def changed_since(
        self, sobject: str, fields: Sequence[str], since: datetime, *, page_size: int | None = None
    ) -> Iterator[list[ChangedRecord]]:
        """Records of ``sobject`` whose ``SystemModstamp`` is at or after ``since``, by stamp then id, page by page."""
        ...
