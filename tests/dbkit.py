"""A throwaway warehouse database: created on the server of a URL, migrated, dropped afterwards.

Shared by the tests and the benchmarks that must not read or write the
session's warehouse (``from tests.dbkit import throwaway_database``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import connect, migrate

__all__ = ["throwaway_database"]


@contextmanager
def throwaway_database(server_url: str, prefix: str) -> Iterator[DatabaseSettings]:
    """A new database ``<prefix>_<random>``, migrated to the latest schema; dropped on exit."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    settings = DatabaseSettings(url=SecretStr(make_conninfo(server_url, dbname=name)))
    try:
        with connect(settings) as conn:
            migrate(conn)
        yield settings
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
