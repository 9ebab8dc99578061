"""Live KPI windows in the warehouse: the record, the port, its PostgreSQL adapter and fake.

``kpi_aggregator`` keeps tumbling windows (1 minute, 1 hour) per task and
dimension and upserts each window's aggregate so far into
``warehouse.kpi_window`` (migration 0004), keyed by
``(window_start, window_size, task, dimension)``. An upsert never lowers a
window's count: a late, smaller snapshot (from a worker that lost its
partitions) is ignored, and writing the same snapshot again changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool

from ..settings import DatabaseSettings
from .connection import create_pool, describe_url
from .errors import WarehouseNotMigrated, WarehouseUnavailable

__all__ = ["InMemoryKpiStore", "KpiStore", "KpiWindow", "PostgresKpiStore"]


@dataclass(frozen=True, slots=True)
class KpiWindow:
    """One window's aggregate for a task and dimension (``all`` or ``<field>=<value>``)."""

    window_start: datetime
    window_size: int
    task: str
    dimension: str
    results: int
    auto_applied: int
    suggested: int
    skipped: int
    cache_hits: int
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    p95_latency_ms: float | None
    max_latency_ms: float | None

    @property
    def key(self) -> tuple[datetime, int, str, str]:
        return self.window_start, self.window_size, self.task, self.dimension


_COLUMNS = tuple(f.name for f in fields(KpiWindow))
_KEY = ("window_start", "window_size", "task", "dimension")


class KpiStore(Protocol):
    """Where KPI windows are kept."""

    def upsert_windows(self, windows: Sequence[KpiWindow]) -> int:
        """Insert or update each window unless the stored one has more results; returns rows written."""
        ...


class PostgresKpiStore:
    """The :class:`KpiStore` on ``warehouse.kpi_window``. Use :meth:`connect`, then :meth:`close`."""

    def __init__(self, pool: ConnectionPool[Any], *, where: str = "PostgreSQL") -> None:
        self._pool = pool
        self._where = where

    @classmethod
    def connect(cls, settings: DatabaseSettings | None = None, *, timeout: float = 10.0) -> PostgresKpiStore:
        """A store on a new pool of at most two connections, made in the background."""
        settings = settings or DatabaseSettings()
        return cls(create_pool(settings, max_size=2, timeout=timeout), where=describe_url(settings))

    def close(self) -> None:
        self._pool.close()

    def upsert_windows(self, windows: Sequence[KpiWindow]) -> int:
        if not windows:
            return 0
        updates = [c for c in _COLUMNS if c not in _KEY]
        statement = sql.SQL(
            "insert into warehouse.kpi_window ({columns}) values ({values})"
            " on conflict ({key}) do update set {updates}, updated_at = now()"
            " where warehouse.kpi_window.results <= excluded.results"
        ).format(
            columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            values=sql.SQL(", ").join([sql.Placeholder()] * len(_COLUMNS)),
            key=sql.SQL(", ").join(map(sql.Identifier, _KEY)),
            updates=sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates),
        )
        with self._session() as conn, conn.cursor() as cursor:
            cursor.executemany(statement, [astuple(w) for w in windows])
            return cursor.rowcount

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as exc:
            raise WarehouseNotMigrated(
                f"warehouse.kpi_window is missing at {self._where}; run `crmpilot db migrate`"
            ) from exc
        except psycopg.OperationalError as exc:
            raise WarehouseUnavailable(f"PostgreSQL at {self._where} is unavailable: {exc}") from exc


class InMemoryKpiStore:
    """The fake :class:`KpiStore`; set ``unavailable = True`` to simulate a database outage."""

    def __init__(self) -> None:
        self.unavailable = False
        self.windows: dict[tuple[datetime, int, str, str], KpiWindow] = {}
        self._lock = threading.Lock()

    def upsert_windows(self, windows: Sequence[KpiWindow]) -> int:
        if self.unavailable:
            raise WarehouseUnavailable("in-memory KPI store set unavailable")
        written = 0
        with self._lock:
            for window in windows:
                stored = self.windows.get(window.key)
                if stored is None or stored.results <= window.results:
                    self.windows[window.key] = window
                    written += 1
        return written
