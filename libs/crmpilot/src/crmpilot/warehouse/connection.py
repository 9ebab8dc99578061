"""Open connections and pools to the warehouse from :class:`~crmpilot.settings.DatabaseSettings`.

Every session runs in UTC, so naive datetimes and ``::date`` casts mean the same
thing on every machine. Connection failures become :class:`WarehouseUnavailable`.
"""

from __future__ import annotations

from typing import Any, TypedDict

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from ..settings import DatabaseSettings
from .errors import WarehouseUnavailable

__all__ = ["connect", "create_pool", "describe_url"]


class _Session(TypedDict):
    """libpq parameters of every session (psycopg passes them on to libpq)."""

    options: str
    application_name: str


_SESSION: _Session = {"options": "-c timezone=UTC", "application_name": "crmpilot"}


def describe_url(settings: DatabaseSettings) -> str:
    """``user@host:port/dbname`` of the configured database, without the password."""
    info = conninfo_to_dict(settings.url.get_secret_value())
    return f"{info.get('user', '')}@{info.get('host', '')}:{info.get('port', '5432')}/{info.get('dbname', '')}"


def connect(settings: DatabaseSettings, *, autocommit: bool = True, timeout: float = 10.0) -> psycopg.Connection[Any]:
    """One connection (for the CLI and migrations)."""
    try:
        return psycopg.connect(
            settings.url.get_secret_value(), autocommit=autocommit, connect_timeout=max(1, round(timeout)), **_SESSION
        )
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailable(f"cannot connect to PostgreSQL at {describe_url(settings)}: {exc}") from exc


def create_pool(
    settings: DatabaseSettings, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0
) -> ConnectionPool[Any]:
    """An open pool that connects in the background; a checkout waits at most ``timeout`` seconds.

    Each connection is checked before use, so a database restart costs no failed batch.
    """
    return ConnectionPool(
        settings.url.get_secret_value(),
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"connect_timeout": max(1, round(timeout)), **_SESSION},
        check=ConnectionPool.check_connection,
        name="crmpilot-warehouse",
        open=True,
    )
