"""Apply the packaged SQL migrations to PostgreSQL, once each, in order.

A minimal runner instead of a migration library (Alembic, yoyo, …): the schema
is plain SQL files (``migrations/NNNN_name.sql``), there is no ORM model to diff,
and the project's dependency set stays as it is. The runner keeps
``warehouse.schema_migrations`` (version, name, checksum, applied_at), runs each
pending migration and its bookkeeping row in one transaction, holds a
PostgreSQL advisory lock so concurrent ``crmpilot db migrate`` runs apply
everything exactly once, and refuses to go on when the SQL of an applied
migration was edited (checksum changed): ship a new migration instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.abc import Traversable
from typing import Any, Literal

import psycopg

from .errors import MigrationChecksumMismatch, MigrationFailed, WarehouseNotMigrated, WarehouseUnavailable

__all__ = [
    "ADVISORY_LOCK_KEY",
    "Migration",
    "AppliedMigration",
    "MigrationState",
    "load_migrations",
    "plan",
    "migrate",
    "status",
    "require_current",
]

ADVISORY_LOCK_KEY = int.from_bytes(b"crmpilot", "big")
"""The ``pg_advisory_lock`` key a migration run holds (fits a signed bigint)."""
_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One packaged migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL with line endings normalised (a CRLF checkout is not a change)."""
        text = self.sql.replace("\r\n", "\n")
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``warehouse.schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class MigrationState:
    """A migration as ``crmpilot db status`` shows it.

    ``applied``: in the database with the packaged checksum; ``pending``: packaged,
    not applied; ``changed``: applied, but the packaged SQL differs; ``unknown``:
    applied by a newer crmpilot, not in this package.
    """

    version: int
    name: str
    state: Literal["applied", "pending", "changed", "unknown"]
    applied_at: datetime | None


def load_migrations(source: Traversable | None = None) -> list[Migration]:
    """Read ``NNNN_name.sql`` files from ``source`` (default: the packaged ones), by version."""
    folder = source if source is not None else resources.files("crmpilot.warehouse").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_lowercase_name.sql")
        version = int(match["version"])
        if version in found:
            raise ValueError(
                f"two migrations share version {version:04d}: {found[version].name!r} and {match['name']!r}"
            )
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def plan(applied: Mapping[int, AppliedMigration], migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations still to apply, in version order.

    Raises :class:`MigrationChecksumMismatch` if any applied migration's packaged
    SQL differs from what was applied. Applied versions this package does not
    know (a newer crmpilot migrated the database) are left alone.
    """
    changed = [m for m in migrations if m.version in applied and applied[m.version].checksum != m.checksum]
    if changed:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in changed)
        raise MigrationChecksumMismatch(
            f"applied migration(s) {names} were edited after being applied (checksum differs); "
            "restore the original SQL and add a new migration for the change"
        )
    return [m for m in migrations if m.version not in applied]


def migrate(conn: psycopg.Connection[Any], migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration and return those applied (empty when up to date).

    Safe to run concurrently: a session advisory lock serialises runners, and each
    re-reads the applied set once it holds the lock. ``conn`` must be idle (not in
    a transaction); it is left in its original autocommit mode.
    """
    wanted = load_migrations() if migrations is None else list(migrations)
    with _translate_connection_errors(), _autocommit(conn), _advisory_lock(conn):
        conn.execute("create schema if not exists warehouse")
        conn.execute(
            """create table if not exists warehouse.schema_migrations (
                    version    integer primary key,
                    name       text not null,
                    checksum   text not null,
                    applied_at timestamptz not null default now())"""
        )
        todo = plan(_applied(conn), wanted)
        for migration in todo:
            try:
                with conn.transaction():
                    conn.execute(migration.sql)  # packaged SQL, no parameters
                    conn.execute(
                        "insert into warehouse.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise MigrationFailed(f"migration {migration.version:04d}_{migration.name} failed: {exc}") from exc
        return todo


def status(conn: psycopg.Connection[Any], migrations: Sequence[Migration] | None = None) -> list[MigrationState]:
    """Every packaged or applied migration with its state, by version. Reads only."""
    wanted = load_migrations() if migrations is None else list(migrations)
    with _translate_connection_errors():
        applied = _applied(conn) if _table_exists(conn) else {}
    states: list[MigrationState] = []
    for m in wanted:
        row = applied.get(m.version)
        if row is None:
            states.append(MigrationState(m.version, m.name, "pending", None))
        else:
            state: Literal["applied", "changed"] = "applied" if row.checksum == m.checksum else "changed"
            states.append(MigrationState(m.version, m.name, state, row.applied_at))
    known = {m.version for m in wanted}
    states += [MigrationState(v, a.name, "unknown", a.applied_at) for v, a in applied.items() if v not in known]
    return sorted(states, key=lambda s: s.version)


def require_current(conn: psycopg.Connection[Any], migrations: Sequence[Migration] | None = None) -> None:
    """Raise :class:`WarehouseNotMigrated` unless every packaged migration is applied unchanged."""
    behind = [s for s in status(conn, migrations) if s.state in ("pending", "changed")]
    if behind:
        names = ", ".join(f"{s.version:04d}_{s.name} ({s.state})" for s in behind)
        raise WarehouseNotMigrated(f"the warehouse schema is not up to date: {names}; run `crmpilot db migrate`")


def _table_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select to_regclass('warehouse.schema_migrations') is not null").fetchone()
    return bool(row and row[0])


def _applied(conn: psycopg.Connection[Any]) -> dict[int, AppliedMigration]:
    rows = conn.execute("select version, name, checksum, applied_at from warehouse.schema_migrations order by version")
    return {r[0]: AppliedMigration(*r) for r in rows.fetchall()}


@contextmanager
def _translate_connection_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailable(f"PostgreSQL is unavailable: {exc}") from exc


@contextmanager
def _autocommit(conn: psycopg.Connection[Any]) -> Iterator[None]:
    previous = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        if not conn.closed:
            conn.autocommit = previous


@contextmanager
def _advisory_lock(conn: psycopg.Connection[Any]) -> Iterator[None]:
    conn.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
