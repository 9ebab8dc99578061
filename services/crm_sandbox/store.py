"""Storage of the sandbox org: the port the service uses, and its PostgreSQL adapter.

Records are JSONB documents (all fields, system fields included) in schema
`crm_sandbox` (configurable, so tests can use their own), next to the change
log (what Change Data Capture would publish), the daily API request counter,
auto-number counters and query cursors for `nextRecordsUrl` paging. Tables are
created on open. An in-memory adapter for unit tests lives in `memstore`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .errors import UnableToLockRow

__all__ = [
    "Change",
    "ChangeType",
    "Cursor",
    "LoggedChange",
    "PostgresStore",
    "Store",
    "StoreTransaction",
    "StoreUnavailable",
    "StoredRecord",
]

ChangeType = Literal["CREATE", "UPDATE", "DELETE"]


class StoreUnavailable(Exception):
    """The database cannot be reached or set up."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record: its sObject type and every field value it has, system fields included."""

    sobject: str
    fields: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.fields["Id"])

    @property
    def is_deleted(self) -> bool:
        return bool(self.fields.get("IsDeleted"))


@dataclass(frozen=True, slots=True)
class Change:
    """One record change, with what Change Data Capture's header would carry."""

    entity: str
    record_id: str
    change_type: ChangeType
    change_origin: str
    commit_user: str
    commit_timestamp: datetime
    transaction_key: str
    sequence_number: int
    changed_fields: tuple[str, ...]
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LoggedChange:
    replay_id: int
    change: Change


@dataclass(frozen=True, slots=True)
class Cursor:
    """The rest of a query's result, served page by page through nextRecordsUrl."""

    batch_size: int
    rows: list[dict[str, Any]]


class StoreTransaction(Protocol):
    async def get(self, record_id: str) -> StoredRecord | None:
        """The record, locked until the transaction ends; UnableToLockRow if it cannot be."""

    async def put(self, record: StoredRecord) -> None: ...

    async def next_record_number(self) -> int:
        """A number never handed out before, for a new record id."""

    async def next_auto_number(self, name: str) -> int:
        """The next value (1, 2, ...) of an auto-number field such as Case.CaseNumber."""

    async def log(self, change: Change) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """A unit of work: everything done in it is committed together or not at all."""

    async def fetch(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]: ...

    async def scan(self, sobject: str, *, include_deleted: bool) -> list[StoredRecord]:
        """All records of a type, in id order."""

    async def count_api_call(self, day: date, limit: int) -> int | None:
        """Count one API request; the day's total, or None if the limit was already reached."""

    async def api_usage(self, day: date) -> int: ...

    async def save_cursor(self, locator: str, cursor: Cursor, now: datetime, ttl: timedelta) -> None:
        """Keep a cursor; cursors older than `ttl` are dropped."""

    async def load_cursor(self, locator: str) -> Cursor | None: ...

    async def changes(self, after: int, limit: int) -> list[LoggedChange]:
        """Logged changes with replay id greater than `after`, oldest first."""

    async def reset(self) -> None:
        """Delete all records, changes, usage and cursors."""


_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.records (
    id text PRIMARY KEY,
    sobject text NOT NULL,
    is_deleted boolean NOT NULL DEFAULT false,
    fields jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_sobject ON {s}.records (sobject, id);
CREATE SEQUENCE IF NOT EXISTS {s}.record_numbers;
CREATE TABLE IF NOT EXISTS {s}.auto_numbers (name text PRIMARY KEY, last_value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.api_usage (day date PRIMARY KEY, used integer NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.changes (
    replay_id bigserial PRIMARY KEY,
    entity text NOT NULL,
    record_id text NOT NULL,
    change_type text NOT NULL,
    change_origin text NOT NULL,
    commit_user text NOT NULL,
    commit_timestamp timestamptz NOT NULL,
    transaction_key text NOT NULL,
    sequence_number integer NOT NULL,
    changed_fields jsonb NOT NULL,
    field_values jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.query_cursors (
    locator text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    batch_size integer NOT NULL,
    rows jsonb NOT NULL
);
"""
_LOCK_TIMEOUT = "5s"
_CONNECT_TIMEOUT_S = 10


class _PostgresTransaction:
    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]], schema: sql.Identifier) -> None:
        self._conn = conn
        self._s = schema

    async def get(self, record_id: str) -> StoredRecord | None:
        query = sql.SQL("SELECT sobject, fields FROM {s}.records WHERE id = %s FOR UPDATE").format(s=self._s)
        try:
            async with self._conn.transaction():  # a savepoint: a lock failure spoils only this
                cur = await self._conn.execute(query, (record_id,))
                row = await cur.fetchone()
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
            raise UnableToLockRow(record_id) from exc
        return None if row is None else StoredRecord(row["sobject"], row["fields"])

    async def put(self, record: StoredRecord) -> None:
        await self._conn.execute(
            sql.SQL(
                "INSERT INTO {s}.records (id, sobject, is_deleted, fields) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET is_deleted = EXCLUDED.is_deleted, fields = EXCLUDED.fields"
            ).format(s=self._s),
            (record.id, record.sobject, record.is_deleted, Jsonb(dict(record.fields))),
        )

    async def next_record_number(self) -> int:
        cur = await self._conn.execute(
            sql.SQL("SELECT nextval(%s) AS n"), (f"{self._s.as_string(self._conn)}.record_numbers",)
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row["n"])

    async def next_auto_number(self, name: str) -> int:
        cur = await self._conn.execute(
            sql.SQL(
                "INSERT INTO {s}.auto_numbers AS a (name, last_value) VALUES (%s, 1) "
                "ON CONFLICT (name) DO UPDATE SET last_value = a.last_value + 1 RETURNING last_value"
            ).format(s=self._s),
            (name,),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row["last_value"])

    async def log(self, change: Change) -> None:
        await self._conn.execute(
            sql.SQL(
                "INSERT INTO {s}.changes (entity, record_id, change_type, change_origin, commit_user, "
                "commit_timestamp, transaction_key, sequence_number, changed_fields, field_values) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(s=self._s),
            (
                change.entity,
                change.record_id,
                change.change_type,
                change.change_origin,
                change.commit_user,
                change.commit_timestamp,
                change.transaction_key,
                change.sequence_number,
                Jsonb(list(change.changed_fields)),
                Jsonb(dict(change.values)),
            ),
        )


class PostgresStore:
    """The store on PostgreSQL; use as `async with PostgresStore(url) as store:`."""

    def __init__(self, database_url: str, *, schema: str = "crm_sandbox", max_connections: int = 10) -> None:
        self._url = database_url
        self._schema_name = schema
        self._s = sql.Identifier(schema)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.AsyncConnection[dict[str, Any]],
        )

    async def __aenter__(self) -> PostgresStore:
        try:
            # One plain connection first: an unreachable database fails at once, with its reason.
            async with await psycopg.AsyncConnection.connect(self._url, connect_timeout=_CONNECT_TIMEOUT_S) as conn:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._schema_name,))
                await conn.execute(sql.SQL(_DDL).format(s=self._s))
            await self._pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            await self._pool.close()
            raise StoreUnavailable(f"cannot open the sandbox database: {exc}") from exc
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pool.close()

    async def drop(self) -> None:
        """Drop the whole schema (tests that made their own)."""
        async with self._pool.connection() as conn:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {s} CASCADE").format(s=self._s))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL lock_timeout = {t}").format(t=sql.Literal(_LOCK_TIMEOUT)))
            yield _PostgresTransaction(conn, self._s)

    async def _all(self, query: sql.Composed, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, params)
            return list(await cur.fetchall())

    async def fetch(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        rows = await self._all(
            sql.SQL("SELECT sobject, fields FROM {s}.records WHERE id = ANY(%s)").format(s=self._s),
            (list(record_ids),),
        )
        return {r["fields"]["Id"]: StoredRecord(r["sobject"], r["fields"]) for r in rows}

    async def scan(self, sobject: str, *, include_deleted: bool) -> list[StoredRecord]:
        rows = await self._all(
            sql.SQL(
                "SELECT sobject, fields FROM {s}.records WHERE sobject = %s AND (%s OR NOT is_deleted) ORDER BY id"
            ).format(s=self._s),
            (sobject, include_deleted),
        )
        return [StoredRecord(r["sobject"], r["fields"]) for r in rows]

    async def count_api_call(self, day: date, limit: int) -> int | None:
        rows = await self._all(
            sql.SQL(
                "INSERT INTO {s}.api_usage AS u (day, used) VALUES (%s, 1) "
                "ON CONFLICT (day) DO UPDATE SET used = u.used + 1 WHERE u.used < %s RETURNING used"
            ).format(s=self._s),
            (day, limit),
        )
        return int(rows[0]["used"]) if rows else None

    async def api_usage(self, day: date) -> int:
        rows = await self._all(sql.SQL("SELECT used FROM {s}.api_usage WHERE day = %s").format(s=self._s), (day,))
        return int(rows[0]["used"]) if rows else 0

    async def save_cursor(self, locator: str, cursor: Cursor, now: datetime, ttl: timedelta) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                sql.SQL("DELETE FROM {s}.query_cursors WHERE created_at < %s").format(s=self._s), (now - ttl,)
            )
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {s}.query_cursors (locator, created_at, batch_size, rows) VALUES (%s, %s, %s, %s)"
                ).format(s=self._s),
                (locator, now, cursor.batch_size, Jsonb(cursor.rows)),
            )

    async def load_cursor(self, locator: str) -> Cursor | None:
        rows = await self._all(
            sql.SQL("SELECT batch_size, rows FROM {s}.query_cursors WHERE locator = %s").format(s=self._s),
            (locator,),
        )
        return Cursor(rows[0]["batch_size"], rows[0]["rows"]) if rows else None

    async def changes(self, after: int, limit: int) -> list[LoggedChange]:
        rows = await self._all(
            sql.SQL("SELECT * FROM {s}.changes WHERE replay_id > %s ORDER BY replay_id LIMIT %s").format(s=self._s),
            (after, limit),
        )
        return [
            LoggedChange(
                r["replay_id"],
                Change(
                    r["entity"],
                    r["record_id"],
                    r["change_type"],
                    r["change_origin"],
                    r["commit_user"],
                    r["commit_timestamp"],
                    r["transaction_key"],
                    r["sequence_number"],
                    tuple(r["changed_fields"]),
                    r["field_values"],
                ),
            )
            for r in rows
        ]

    async def reset(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                sql.SQL("TRUNCATE {s}.records, {s}.auto_numbers, {s}.api_usage, {s}.changes, {s}.query_cursors").format(
                    s=self._s
                )
            )
