"""The PostgreSQL warehouse: schema migrations, the :class:`Warehouse` port, its adapter and fake.

``crmpilot db migrate`` applies the packaged migrations (schemas ``warehouse``
for tables and ``bi`` for views); services write through a :class:`Warehouse`:
:class:`PostgresWarehouse` in production, :class:`InMemoryWarehouse` in unit tests.
"""

from .connection import connect, create_pool, describe_url
from .errors import (
    MigrationChecksumMismatch,
    MigrationFailed,
    WarehouseError,
    WarehouseNotMigrated,
    WarehouseUnavailable,
)
from .memory import InMemoryWarehouse
from .migrator import (
    AppliedMigration,
    Migration,
    MigrationState,
    load_migrations,
    migrate,
    plan,
    require_current,
    status,
)
from .records import AuditStatus, CrmAuditEntry, DlqEntry, FeedbackEntry, KafkaPosition, Position
from .writer import EventBatch, PostgresWarehouse, Warehouse

__all__ = [
    "AppliedMigration",
    "AuditStatus",
    "CrmAuditEntry",
    "DlqEntry",
    "EventBatch",
    "FeedbackEntry",
    "InMemoryWarehouse",
    "KafkaPosition",
    "Migration",
    "MigrationChecksumMismatch",
    "MigrationFailed",
    "MigrationState",
    "Position",
    "PostgresWarehouse",
    "Warehouse",
    "WarehouseError",
    "WarehouseNotMigrated",
    "WarehouseUnavailable",
    "connect",
    "create_pool",
    "describe_url",
    "load_migrations",
    "migrate",
    "plan",
    "require_current",
    "status",
]
