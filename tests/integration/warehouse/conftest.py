"""PostgreSQL for the warehouse integration tests: throwaway migrated databases.

Each test session creates its own databases (``crmpilot_test_<random>``) on the
server at ``CRMPILOT_DATABASE_URL`` and drops them at the end, so the tests never
touch the demo data. Without a reachable server the tests are skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse, connect, describe_url, migrate

DEFAULT_URL = "postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot"

NewDatabase = Callable[[], DatabaseSettings]


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("CRMPILOT_DATABASE_URL", DEFAULT_URL)
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        where = describe_url(DatabaseSettings(url=SecretStr(url)))
        pytest.skip(
            f"PostgreSQL unreachable at {where} (start it with `infra/stack.sh up` or set CRMPILOT_DATABASE_URL): {exc}"
        )
    return url


@pytest.fixture(scope="session")
def new_database(server_url: str) -> Iterator[NewDatabase]:
    """Create empty databases on demand; all are dropped when the session ends."""
    created: list[str] = []

    def make() -> DatabaseSettings:
        name = f"crmpilot_test_{secrets.token_hex(4)}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            except psycopg.errors.InsufficientPrivilege as exc:
                pytest.skip(f"the test user may not create databases: {exc}")
        created.append(name)
        return DatabaseSettings(url=SecretStr(make_conninfo(server_url, dbname=name)))

    yield make
    failures: list[str] = []
    for name in created:
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
                # no FORCE: it needs rights to end the server's own sessions (autovacuum), while a
                # plain DROP waits a few seconds for them and for our closed sessions to exit.
                conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            failures.append(f"{name} ({exc})")
    if failures:
        pytest.fail(f"could not drop test database(s), drop them by hand: {'; '.join(failures)}", pytrace=False)


@pytest.fixture(scope="session")
def migrated(new_database: NewDatabase) -> DatabaseSettings:
    settings = new_database()
    with connect(settings) as conn:
        migrate(conn)
    return settings


@pytest.fixture(scope="module")
def module_database(new_database: NewDatabase) -> DatabaseSettings:
    """A migrated database of the test module's own: the rows and views it makes show in no other module's snapshots."""
    settings = new_database()
    with connect(settings) as conn:
        migrate(conn)
    return settings


@pytest.fixture(scope="module")
def module_warehouse(module_database: DatabaseSettings) -> Iterator[PostgresWarehouse]:
    with PostgresWarehouse.connect(module_database, timeout=5) as wh:
        yield wh


@pytest.fixture(scope="session")
def session_warehouse(migrated: DatabaseSettings) -> Iterator[PostgresWarehouse]:
    with PostgresWarehouse.connect(migrated, timeout=5) as wh:
        yield wh


@contextmanager
def _emptied(settings: DatabaseSettings) -> Iterator[psycopg.Connection[Any]]:
    with connect(settings) as conn:
        conn.execute(
            "truncate warehouse.raw_events, warehouse.fact_ticket_classification, warehouse.fact_email_summary,"
            " warehouse.fact_enrichment, warehouse.crm_write_audit, warehouse.feedback, warehouse.dlq_log"
        )
        yield conn


@pytest.fixture
def emptied() -> Callable[[DatabaseSettings], AbstractContextManager[psycopg.Connection[Any]]]:
    """Connect to a migrated database after emptying its event, result, audit, feedback and DLQ tables."""
    return _emptied


@pytest.fixture
def db(migrated: DatabaseSettings) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the migrated database, whose tables are emptied first."""
    with _emptied(migrated) as conn:
        yield conn


@pytest.fixture
def warehouse(session_warehouse: PostgresWarehouse, db: psycopg.Connection[Any]) -> PostgresWarehouse:
    return session_warehouse
