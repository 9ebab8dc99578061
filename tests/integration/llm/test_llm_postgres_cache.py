"""The PostgreSQL response cache against the local stack's PostgreSQL (``infra/stack.sh up``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import BaseModel

from crmpilot.llm import LLMClient, PostgresCache, Prompt, RetryPolicy, TaskSpec
from crmpilot.llm.cache import CachedAnswer, CacheKey
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.testing import OpenAITestServer, Reply

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

URL = os.environ.get("CRMPILOT_DATABASE_URL", "postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot")


class Answer(BaseModel):
    label: Literal["yes", "no"]


SPEC = TaskSpec("yes_no", Prompt("yes_no", "1", "Answer yes or no in JSON.", "{question}"), Answer)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(URL, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at CRMPILOT_DATABASE_URL (start it with infra/stack.sh up): {exc}")
    name = f"llm_test_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.close()


async def test_round_trip_ttl_and_schema_creation(schema: str) -> None:
    cache = PostgresCache(URL, schema=schema)
    key = CacheKey("openai", "gpt-4o-mini", "yes_no", "abc", "def")
    assert await cache.get(key) is None  # creates the schema on first use
    await cache.put(
        key, CachedAnswer({"label": "yes"}, "gpt-4o-mini", "gpt-4o-mini-2025-01-01", "r1", 10, 2, Decimal("0.0000027"))
    )
    got = await cache.get(key)
    assert got is not None and got.output == {"label": "yes"} and got.cost_usd == Decimal("0.0000027")
    assert got.model_version == "gpt-4o-mini-2025-01-01" and (got.tokens_in, got.tokens_out) == (10, 2)
    expired = CacheKey("openai", "gpt-4o-mini", "yes_no", "abc", "old")
    await cache.put(expired, CachedAnswer({"label": "no"}, "gpt-4o-mini"), ttl=0.001)
    import asyncio

    await asyncio.sleep(0.05)
    assert await cache.get(expired) is None
    assert await cache.purge_expired() == 1
    await cache.ensure_schema()  # idempotent
    await cache.aclose()


async def test_redelivered_event_does_not_pay_twice_across_processes(schema: str) -> None:
    """Two clients (think: a consumer before and after a restart) share the Postgres cache."""
    with OpenAITestServer(lambda req: Reply({"label": "yes"}, usage=(50, 5))) as srv:
        for expected_requests in (1, 1):
            client = LLMClient(
                OpenAIProvider(model="gpt-4o-mini", base_url=srv.base_url, api_key="sk-test"),
                cache=PostgresCache(URL, schema=schema),
                retry=RetryPolicy(initial_wait=0.01),
            )
            run = await client.run(SPEC, {"question": "Is jane@example.com a customer?"})
            await client.aclose()
            assert run.output.label == "yes"
            assert srv.request_count == expected_requests
        assert run.cache_hit and run.cost_usd == 0
