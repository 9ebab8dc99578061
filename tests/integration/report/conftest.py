"""A throwaway migrated database for the report tests, dropped at the end of the session.

Created on the server at ``database_url`` (``CRMPILOT_DATABASE_URL`` or the
local stack), so the tests never touch the demo data.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import connect, migrate


@pytest.fixture(scope="session")
def report_database(database_url: str) -> Iterator[DatabaseSettings]:
    name = f"crmpilot_test_report_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = DatabaseSettings(url=SecretStr(make_conninfo(database_url, dbname=name)))
    with connect(settings) as conn:
        migrate(conn)
    yield settings
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
