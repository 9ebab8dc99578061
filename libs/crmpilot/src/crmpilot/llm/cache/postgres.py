"""A PostgreSQL response cache (psycopg 3): shared by every replica, survives restarts.

Table ``<schema>.llm_cache`` (schema ``llm`` by default), created by
:meth:`PostgresCache.ensure_schema` or on first use, under an advisory lock so
replicas starting together do not race. Rows past ``expires_at`` are ignored
and removed by :meth:`PostgresCache.purge_expired`. Database errors surface as
:class:`~crmpilot.llm.errors.LLMCacheError`; the client then treats the lookup as
a miss (and pays for the call) rather than failing the event.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmpilot.llm.cache.base import CachedAnswer, CacheKey
from crmpilot.llm.errors import LLMCacheError

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresCache"]

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{table} (
    key          text PRIMARY KEY,
    provider     text NOT NULL,
    model        text NOT NULL,
    task         text NOT NULL,
    prompt_hash  text NOT NULL,
    input_hash   text NOT NULL,
    output       jsonb NOT NULL,
    model_used   text NOT NULL,
    model_version text,
    response_id  text,
    tokens_in    integer NOT NULL,
    tokens_out   integer NOT NULL,
    cost_usd     numeric(18, 8) NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz
);
CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (expires_at) WHERE expires_at IS NOT NULL;
ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS confidence_source text NOT NULL DEFAULT 'self_report';
"""


class PostgresCache:
    """``conninfo`` (a libpq URL) or an open ``psycopg_pool.AsyncConnectionPool`` you own."""

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool | None = None,
        schema: str = "llm",
        table: str = "llm_cache",
        max_pool_size: int = 4,
    ) -> None:
        if (conninfo is None) == (pool is None):
            raise ValueError("pass exactly one of conninfo or pool")
        self._conninfo = conninfo
        self._pool = pool
        self._owns_pool = pool is None
        self._max_pool_size = max_pool_size
        self.schema = schema
        self.table = table
        self._ready = False
        self._lock = asyncio.Lock()

    def _sql(self, template: str) -> Any:
        from psycopg import sql

        return sql.SQL(template).format(
            schema=sql.Identifier(self.schema),
            table=sql.Identifier(self.table),
            index=sql.Identifier(f"{self.table}_expires_idx"),
        )

    async def _get_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            from psycopg_pool import AsyncConnectionPool

            assert self._conninfo is not None  # __init__ takes exactly one of conninfo and pool
            pool = AsyncConnectionPool(
                self._conninfo, min_size=1, max_size=self._max_pool_size, open=False, kwargs={"autocommit": True}
            )
            await pool.open(wait=True, timeout=10)
            self._pool = pool
        return self._pool

    async def ensure_schema(self) -> None:
        """Create the schema, table and index if missing (idempotent, safe to race)."""
        import psycopg

        async with self._lock:
            if self._ready:
                return
            try:
                pool = await self._get_pool()
                async with pool.connection() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmpilot.llm_cache'))")
                    await conn.execute(self._sql(_DDL))
            except (psycopg.Error, OSError, TimeoutError) as exc:
                raise LLMCacheError(f"cannot prepare the LLM cache table: {type(exc).__name__}") from exc
            self._ready = True

    async def get(self, key: CacheKey) -> CachedAnswer | None:
        import psycopg

        await self.ensure_schema()
        pool = await self._get_pool()
        query = self._sql(
            "SELECT output, model_used, model_version, response_id, tokens_in, tokens_out, cost_usd, created_at,"
            " confidence_source FROM {schema}.{table} WHERE key = %s AND (expires_at IS NULL OR expires_at > now())"
        )
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(query, (key.digest,))
                row = await cur.fetchone()
        except (psycopg.Error, OSError) as exc:
            raise LLMCacheError(f"LLM cache lookup failed: {type(exc).__name__}") from exc
        if row is None:
            return None
        output, model, version, response_id, tin, tout, cost, created, source = row
        if isinstance(output, str):
            output = json.loads(output)
        return CachedAnswer(output, model, version, response_id, tin, tout, Decimal(cost), created, source)

    async def put(self, key: CacheKey, answer: CachedAnswer, *, ttl: float | None = None) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        await self.ensure_schema()
        pool = await self._get_pool()
        query = self._sql(
            "INSERT INTO {schema}.{table} (key, provider, model, task, prompt_hash, input_hash, output, model_used,"
            " model_version, response_id, tokens_in, tokens_out, cost_usd, created_at, expires_at, confidence_source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + %s::interval, %s)"
            " ON CONFLICT (key) DO UPDATE SET output = EXCLUDED.output, model_used = EXCLUDED.model_used,"
            " model_version = EXCLUDED.model_version, response_id = EXCLUDED.response_id,"
            " tokens_in = EXCLUDED.tokens_in, tokens_out = EXCLUDED.tokens_out, cost_usd = EXCLUDED.cost_usd,"
            " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,"
            " confidence_source = EXCLUDED.confidence_source"
        )
        params = (
            key.digest, key.provider, key.model, key.task, key.prompt_hash, key.input_hash,
            Jsonb(answer.output), answer.model, answer.model_version, answer.response_id,
            answer.tokens_in, answer.tokens_out, answer.cost_usd, answer.created_at,
            None if ttl is None else timedelta(seconds=ttl), answer.confidence_source,
        )  # fmt: skip
        try:
            async with pool.connection() as conn:
                await conn.execute(query, params)
        except (psycopg.Error, OSError) as exc:
            raise LLMCacheError(f"LLM cache store failed: {type(exc).__name__}") from exc

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        await self.ensure_schema()
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("DELETE FROM {schema}.{table} WHERE expires_at <= now()"))
            return cur.rowcount

    async def aclose(self) -> None:
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._ready = False
