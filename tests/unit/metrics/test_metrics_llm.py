"""The LLM client's Prometheus counters move by what a run spent (read from the process registry)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Literal

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from crmpilot.llm import LLMClient, MemoryCache, Prompt, RetryPolicy, TaskSpec
from crmpilot.llm.errors import LLMRateLimited
from crmpilot.llm.pricing import Price, PriceTable
from crmpilot.llm.testing.fake import FakeProvider
from crmpilot.telemetry.metrics import exposition


class Out(BaseModel):
    category: Literal["A", "B"]


def spec(name: str) -> TaskSpec[Out]:
    return TaskSpec(
        name=name, prompt=Prompt(id=name, version="1", system="s", user_template="{text}"), output_model=Out
    )


PRICES = PriceTable({"priced-model": Price(Decimal("1.00"), Decimal("2.00"))})  # USD per 1M tokens
FAST = RetryPolicy(max_attempts=3, initial_wait=0.001, max_wait=0.002, jitter=0.0, deadline=5.0)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_tokens_cost_requests_and_cache_hits() -> None:
    task = "metrics_llm_ok"
    provider = FakeProvider(lambda s, p: {"category": "A"}, name="fakeprov", model="priced-model", tokens=(100, 20))
    client = LLMClient(provider, cache=MemoryCache(), prices=PRICES, retry=FAST)

    async def go() -> None:
        await client.run(spec(task), {"text": "one"})
        await client.run(spec(task), {"text": "two"})
        hit = await client.run(spec(task), {"text": "one"})
        assert hit.cache_hit

    asyncio.run(go())
    m = {"task": task, "model": "priced-model"}
    assert value("crmpilot_llm_tokens_total", **m, type="input") == 200
    assert value("crmpilot_llm_tokens_total", **m, type="output") == 40
    assert value("crmpilot_llm_cost_usd_total", **m) == pytest.approx(2 * (100 * 1.0 + 20 * 2.0) / 1e6)
    assert value("crmpilot_llm_requests_total", **m, outcome="ok") == 2
    assert value("crmpilot_llm_requests_total", **m, outcome="cache_hit") == 1
    assert value("crmpilot_llm_cache_hits_total", task=task) == 1
    assert value("crmpilot_llm_cache_misses_total", task=task) == 2
    body, _ = exposition()
    assert b'crmpilot_llm_tokens_total{model="priced-model",task="metrics_llm_ok",type="input"} 200.0' in body


def test_retries_and_failures_are_counted() -> None:
    task = "metrics_llm_fail"
    provider = FakeProvider(
        script=[LLMRateLimited("slow down"), LLMRateLimited("slow down"), LLMRateLimited("slow down")],
        name="fakeprov",
        model="priced-model",
    )
    client = LLMClient(provider, prices=PRICES, retry=FAST)
    with pytest.raises(LLMRateLimited):
        asyncio.run(client.run(spec(task), {"text": "x"}))
    m = {"task": task, "model": "priced-model"}
    assert value("crmpilot_llm_requests_total", **m, outcome="LLMRateLimited") == 1
    assert value("crmpilot_llm_retries_total", **m) == 2
    assert value("crmpilot_llm_requests_total", **m, outcome="ok") == 0


def test_retry_then_success_counts_one_ok_request() -> None:
    task = "metrics_llm_retry_ok"
    provider = FakeProvider(
        lambda s, p: {"category": "B"},
        script=[LLMRateLimited("slow down")],
        name="fakeprov",
        model="priced-model",
        tokens=(7, 3),
    )
    client = LLMClient(provider, prices=PRICES, retry=FAST)
    asyncio.run(client.run(spec(task), {"text": "x"}))
    m = {"task": task, "model": "priced-model"}
    assert value("crmpilot_llm_requests_total", **m, outcome="ok") == 1
    assert value("crmpilot_llm_retries_total", **m) == 1
    assert value("crmpilot_llm_tokens_total", **m, type="input") == 7
    assert value("crmpilot_llm_tokens_total", **m, type="output") == 3
