"""The warehouse port and its PostgreSQL adapter.

:class:`Warehouse` is what services depend on; :class:`PostgresWarehouse` writes
through a ``psycopg_pool`` pool: each call is one transaction in which each table
gets one ``INSERT … ON CONFLICT DO NOTHING`` statement, run for all its rows with
``executemany`` (psycopg pipelines it: the rows go out back to back and are
answered in one round trip, the statement is parsed once), so writing the same
results or events again changes nothing. A single multi-row ``VALUES`` statement
would save nothing on the server and cost far more in the client: psycopg parses
the query text of each statement, and a batch of 500 has 22,500 placeholders
(``make bench`` measures it). The in-memory fake lives in :mod:`.memory`.

Errors: a lost or unreachable database raises :class:`WarehouseUnavailable`
(retryable); a missing table or column raises :class:`WarehouseNotMigrated`
(fatal, run ``crmpilot db migrate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..events import Envelope
from ..settings import DatabaseSettings
from .connection import create_pool, describe_url
from .errors import WarehouseNotMigrated, WarehouseUnavailable
from .migrator import require_current
from .records import AuditStatus, CrmAuditEntry, DlqEntry, FeedbackEntry, Position
from .rows import JSON_COLUMNS, audit_row, dlq_row, fact_row, feedback_row, raw_event_row

__all__ = ["Warehouse", "PostgresWarehouse", "EventBatch"]

EventBatch = Sequence[tuple[Envelope[Any], Position]]
"""Events with the Kafka position each was read from (a ``MessageContext`` will do)."""

_SCHEMA_ERRORS = (pg_errors.UndefinedTable, pg_errors.UndefinedColumn, pg_errors.InvalidSchemaName)
_AUDIT_COLUMNS = (
    "id", "result_id", "sobject", "record_id", "field", "before_value", "after_value", "status",
    "reason", "trace_id", "run_id", "applied_at", "reverted_at",
)  # fmt: skip


class Warehouse(Protocol):
    """Where results, events and operational records are kept. All writes are idempotent.

    Each ``write_*``/``record_*`` method returns how many rows were new.
    """

    def write_results(self, batch: EventBatch) -> int:
        """Store AI results (any mix of tasks) once per ``result_id``."""
        ...

    def write_raw_events(self, batch: EventBatch) -> int:
        """Store events as received, once per event id."""
        ...

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int:
        """Append CRM write outcomes to the audit log."""
        ...

    def record_dlq(self, entries: Sequence[DlqEntry]) -> int:
        """Log dead-lettered records, once per consumer group and position."""
        ...

    def record_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        """Store human overrides of AI values, once per feedback event id."""
        ...

    def crm_audit(
        self,
        *,
        since: datetime | None = None,
        run_id: str | None = None,
        result_ids: Sequence[str] | None = None,
        statuses: Sequence[AuditStatus] = ("applied",),
    ) -> list[CrmAuditEntry]:
        """Audit entries matching every given filter, oldest first (what ``crm revert`` undoes)."""
        ...

    def mark_reverted(self, audit_ids: Sequence[int], *, at: datetime | None = None) -> int:
        """Mark applied audit entries as reverted; returns how many changed."""
        ...


class PostgresWarehouse:
    """The :class:`Warehouse` on PostgreSQL. Use :meth:`connect`, then :meth:`close` (or ``with``)."""

    def __init__(self, pool: ConnectionPool[Any], *, where: str = "PostgreSQL") -> None:
        self._pool = pool
        self._where = where

    @classmethod
    def connect(
        cls, settings: DatabaseSettings | None = None, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0
    ) -> PostgresWarehouse:
        """A warehouse on a new pool; connections are made in the background, not here."""
        settings = settings or DatabaseSettings()
        pool = create_pool(settings, min_size=min_size, max_size=max_size, timeout=timeout)
        return cls(pool, where=describe_url(settings))

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresWarehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Raise unless the database is reachable and every packaged migration is applied."""
        with self._session() as conn:
            require_current(conn)

    def write_results(self, batch: EventBatch) -> int:
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for envelope, position in batch:
            table, row = fact_row(envelope, position)
            by_table[table].append(row)
        with self._session() as conn:
            return sum(_insert(conn, table, rows, conflict=("result_id",)) for table, rows in by_table.items())

    def write_raw_events(self, batch: EventBatch) -> int:
        rows = [raw_event_row(envelope, position) for envelope, position in batch]
        with self._session() as conn:
            return _insert(conn, "raw_events", rows, conflict=("event_id",))

    def record_crm_audit(self, entries: Sequence[CrmAuditEntry]) -> int:
        with self._session() as conn:
            return _insert(conn, "crm_write_audit", [audit_row(e) for e in entries], conflict=None)

    def record_dlq(self, entries: Sequence[DlqEntry]) -> int:
        conflict = ("consumer_group", "topic", "kafka_partition", "kafka_offset")
        with self._session() as conn:
            return _insert(conn, "dlq_log", [dlq_row(e) for e in entries], conflict=conflict)

    def record_feedback(self, entries: Sequence[FeedbackEntry]) -> int:
        with self._session() as conn:
            return _insert(conn, "feedback", [feedback_row(e) for e in entries], conflict=("event_id",))

    def crm_audit(
        self,
        *,
        since: datetime | None = None,
        run_id: str | None = None,
        result_ids: Sequence[str] | None = None,
        statuses: Sequence[AuditStatus] = ("applied",),
    ) -> list[CrmAuditEntry]:
        query = sql.SQL(
            "select {} from warehouse.crm_write_audit"
            " where status = any(%(statuses)s)"
            " and (%(since)s::timestamptz is null or applied_at >= %(since)s)"
            " and (%(run_id)s::text is null or run_id = %(run_id)s)"
            " and (%(result_ids)s::text[] is null or result_id = any(%(result_ids)s))"
            " order by applied_at, id"
        ).format(sql.SQL(", ").join(map(sql.Identifier, _AUDIT_COLUMNS)))
        params = {
            "statuses": list(statuses),
            "since": since,
            "run_id": run_id,
            "result_ids": None if result_ids is None else list(result_ids),
        }
        with self._session() as conn:
            rows = conn.execute(query, params).fetchall()
        return [CrmAuditEntry(**dict(zip(_AUDIT_COLUMNS, row, strict=True))) for row in rows]

    def mark_reverted(self, audit_ids: Sequence[int], *, at: datetime | None = None) -> int:
        with self._session() as conn:
            cursor = conn.execute(
                "update warehouse.crm_write_audit set status = 'reverted', reverted_at = coalesce(%s, now())"
                " where id = any(%s) and status = 'applied'",
                (at, list(audit_ids)),
            )
            return cursor.rowcount

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction (committed on success), errors translated."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except _SCHEMA_ERRORS as exc:
            raise WarehouseNotMigrated(
                f"the warehouse schema at {self._where} is missing or out of date ({exc.diag.message_primary}); "
                "run `crmpilot db migrate`"
            ) from exc
        except psycopg.OperationalError as exc:
            raise WarehouseUnavailable(f"PostgreSQL at {self._where} is unavailable: {exc}") from exc


def _insert(
    conn: psycopg.Connection[Any], table: str, rows: Sequence[Mapping[str, Any]], *, conflict: Sequence[str] | None
) -> int:
    """Insert ``rows`` (all with the same keys) with one pipelined statement; returns how many were new."""
    if not rows:
        return 0
    columns = list(rows[0])
    on_conflict = (
        sql.SQL(" on conflict ({}) do nothing").format(sql.SQL(", ").join(map(sql.Identifier, conflict)))
        if conflict
        else sql.SQL("")
    )
    statement = sql.SQL("insert into {} ({}) values ({}){}").format(
        sql.Identifier("warehouse", table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
        on_conflict,
    )
    with conn.cursor() as cursor:
        cursor.executemany(statement, [[_adapt(column, row[column]) for column in columns] for row in rows])
        return cursor.rowcount


def _adapt(column: str, value: Any) -> Any:
    return Jsonb(value) if column in JSON_COLUMNS and value is not None else value
