"""Fixtures of the CRM integration tests: the in-process CRM sandbox and a throwaway migrated warehouse.

- ``sandbox`` / ``sb`` / ``sf``: from ``tests/integration/sandbox_support.py``.
- ``crm_db``: a database of its own on the local PostgreSQL, migrated, dropped at the end.
- ``warehouse`` / ``watermarks``: the warehouse and the crm_source store on it, tables emptied first.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox_support import sandbox, sb, sf  # noqa: E402, F401  (fixtures)

from crmpilot.crm.watermark import PostgresWatermarkStore  # noqa: E402
from crmpilot.settings import DatabaseSettings  # noqa: E402
from crmpilot.warehouse import PostgresWarehouse, connect, migrate  # noqa: E402

_TABLES = "warehouse.crm_write_audit, warehouse.feedback, warehouse.crm_source_watermark, warehouse.crm_source_seen"


@pytest.fixture(scope="session")
def crm_db(database_url: str) -> Iterator[DatabaseSettings]:
    name = f"crmpilot_test_crm_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = DatabaseSettings(url=make_conninfo(database_url, dbname=name))
    try:
        with connect(settings) as conn:
            migrate(conn)
        yield settings
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))


@pytest.fixture
def warehouse(crm_db: DatabaseSettings) -> Iterator[PostgresWarehouse]:
    with connect(crm_db) as conn:
        conn.execute(f"truncate {_TABLES}")
    with PostgresWarehouse.connect(crm_db, timeout=5) as wh:
        yield wh


@pytest.fixture
def watermarks(crm_db: DatabaseSettings, warehouse: PostgresWarehouse) -> Iterator[PostgresWatermarkStore]:
    store = PostgresWatermarkStore.connect(crm_db, timeout=5)
    yield store
    store.close()

