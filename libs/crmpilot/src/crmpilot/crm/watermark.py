"""Where the CRM source keeps its place: a watermark per object and what it last saw of each record.

:class:`WatermarkStore` is the port; :class:`PostgresWatermarkStore` keeps it in
the warehouse (``warehouse.crm_source_watermark`` and ``crm_source_seen``,
migration 0005), :class:`InMemoryWatermarkStore` in memory for unit tests.
A page of changes is saved in one transaction (watermark and seen records
together) after its events were acknowledged, so a restart resumes where the
last saved page ended.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse.connection import create_pool, describe_url
from crmpilot.warehouse.errors import WarehouseNotMigrated, WarehouseUnavailable

__all__ = ["Watermark", "SeenRecord", "WatermarkStore", "PostgresWatermarkStore", "InMemoryWatermarkStore"]


@dataclass(frozen=True, slots=True)
class Watermark:
    at: datetime
    """The highest ``SystemModstamp`` fully handled."""
    started_at: datetime
    """Where this source began reading the object: records created since are new to everyone downstream."""


@dataclass(frozen=True, slots=True)
class SeenRecord:
    record_id: str
    modstamp: datetime
    digests: Mapping[str, str]
    """Per tracked field, a digest of its value as last seen."""


class WatermarkStore(Protocol):
    def load(self, source: str, sobject: str) -> Watermark | None:
        """The saved watermark, or None on the first run."""
        ...

    def seen(self, source: str, sobject: str, ids: Sequence[str]) -> dict[str, SeenRecord]:
        """What was last seen of these records (those never seen are absent)."""
        ...

    def save(self, source: str, sobject: str, watermark: Watermark, seen: Sequence[SeenRecord]) -> None:
        """Store a handled page atomically; neither the watermark nor a record's stamp ever moves back."""
        ...


class InMemoryWatermarkStore:
    def __init__(self) -> None:
        self.watermarks: dict[tuple[str, str], Watermark] = {}
        self.records: dict[tuple[str, str, str], SeenRecord] = {}

    def load(self, source: str, sobject: str) -> Watermark | None:
        return self.watermarks.get((source, sobject))

    def seen(self, source: str, sobject: str, ids: Sequence[str]) -> dict[str, SeenRecord]:
        return {rid: rec for rid in ids if (rec := self.records.get((source, sobject, rid))) is not None}

    def save(self, source: str, sobject: str, watermark: Watermark, seen: Sequence[SeenRecord]) -> None:
        old = self.watermarks.get((source, sobject))
        if old is None or watermark.at >= old.at:
            self.watermarks[(source, sobject)] = watermark
        for rec in seen:
            key = (source, sobject, rec.record_id)
            prior = self.records.get(key)
            if prior is None or rec.modstamp >= prior.modstamp:
                self.records[key] = rec


class PostgresWatermarkStore:
    """The store in the warehouse database. Use :meth:`connect`, then :meth:`close`."""

    def __init__(self, pool: ConnectionPool[Any], *, where: str = "PostgreSQL") -> None:
        self._pool = pool
        self._where = where

    @classmethod
    def connect(cls, settings: DatabaseSettings | None = None, *, timeout: float = 10.0) -> PostgresWatermarkStore:
        settings = settings or DatabaseSettings()
        return cls(create_pool(settings, min_size=1, max_size=2, timeout=timeout), where=describe_url(settings))

    def close(self) -> None:
        self._pool.close()

    def load(self, source: str, sobject: str) -> Watermark | None:
        with self._session() as conn:
            row = conn.execute(
                "select watermark, started_at from warehouse.crm_source_watermark where source = %s and sobject = %s",
                (source, sobject),
            ).fetchone()
        return None if row is None else Watermark(row[0], row[1])

    def seen(self, source: str, sobject: str, ids: Sequence[str]) -> dict[str, SeenRecord]:
        if not ids:
            return {}
        with self._session() as conn:
            rows = conn.execute(
                "select record_id, modstamp, digests from warehouse.crm_source_seen"
                " where source = %s and sobject = %s and record_id = any(%s)",
                (source, sobject, list(ids)),
            ).fetchall()
        return {r[0]: SeenRecord(r[0], r[1], r[2]) for r in rows}

    def save(self, source: str, sobject: str, watermark: Watermark, seen: Sequence[SeenRecord]) -> None:
        with self._session() as conn:
            conn.execute(
                "insert into warehouse.crm_source_watermark as w (source, sobject, watermark, started_at)"
                " values (%s, %s, %s, %s) on conflict (source, sobject) do update"
                " set watermark = greatest(w.watermark, excluded.watermark), updated_at = now()",
                (source, sobject, watermark.at, watermark.started_at),
            )
            if seen:
                with conn.cursor() as cur:
                    cur.executemany(
                        "insert into warehouse.crm_source_seen as s (source, sobject, record_id, modstamp, digests)"
                        " values (%s, %s, %s, %s, %s) on conflict (source, sobject, record_id) do update"
                        " set modstamp = excluded.modstamp, digests = excluded.digests, seen_at = now()"
                        " where s.modstamp <= excluded.modstamp",
                        [(source, sobject, r.record_id, r.modstamp, Jsonb(dict(r.digests))) for r in seen],
                    )

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction (committed on success), errors translated."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as exc:
            raise WarehouseNotMigrated(
                f"the crm_source tables are missing at {self._where} ({exc.diag.message_primary}); run "
                "`crmpilot db migrate`"
            ) from exc
        except psycopg.OperationalError as exc:
            raise WarehouseUnavailable(f"PostgreSQL at {self._where} is unavailable: {exc}") from exc
