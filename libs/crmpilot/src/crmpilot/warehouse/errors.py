"""Errors of the warehouse package, each carrying the trait the runtime acts on.

``WarehouseUnavailable`` is retryable (the database is down or unreachable: pause
and retry); the others are fatal (the schema is missing, changed, or a migration
failed: a person must act). Third-party ``psycopg`` errors are translated into
these at the edge and chained as ``__cause__``.
"""

from __future__ import annotations

from ..errors import CrmpilotError, Fatal, Retryable

__all__ = [
    "ErasureIncomplete",
    "InvalidRetention",
    "InvalidSubject",
    "MigrationChecksumMismatch",
    "MigrationFailed",
    "PrivacyOperationFailed",
    "WarehouseError",
    "WarehouseNotMigrated",
    "WarehouseUnavailable",
]


class WarehouseError(CrmpilotError):
    """Base of every warehouse error."""


class WarehouseUnavailable(WarehouseError, Retryable):
    """PostgreSQL cannot be reached or dropped the connection; retry later."""


class WarehouseNotMigrated(WarehouseError, Fatal):
    """The warehouse schema is missing or older than this crmpilot."""


class MigrationChecksumMismatch(WarehouseError, Fatal):
    """An applied migration's SQL was edited afterwards; the runner refuses to go on."""


class MigrationFailed(WarehouseError, Fatal):
    """A migration's SQL failed; its transaction was rolled back."""


class InvalidSubject(WarehouseError, Fatal):
    """``crmpilot erase`` was given something that is neither an e-mail address nor a record id it can match safely."""


class InvalidRetention(WarehouseError, Fatal):
    """A retention period that is missing, not a whole number of days, or below one day."""


class ErasureIncomplete(WarehouseError, Fatal):
    """After anonymising, a table still held the subject; the erasure was rolled back."""


class PrivacyOperationFailed(WarehouseError, Fatal):
    """An erasure or purge statement failed in the database; its transaction was rolled back."""
