"""Errors of the warehouse package, each carrying the trait the runtime acts on.

``WarehouseUnavailable`` is retryable (the database is down or unreachable: pause
and retry); the others are fatal (the schema is missing, changed, or a migration
failed: a person must act). Third-party ``psycopg`` errors are translated into
these at the edge and chained as ``__cause__``.
"""

from __future__ import annotations

from ..errors import CrmpilotError, Fatal, Retryable

__all__ = [
    "WarehouseError",
    "WarehouseUnavailable",
    "WarehouseNotMigrated",
    "MigrationChecksumMismatch",
    "MigrationFailed",
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
