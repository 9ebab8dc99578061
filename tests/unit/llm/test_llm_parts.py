"""The client's parts on their own: retry-after parsing, limits, breaker, prices, settings, factory, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
from llm_testkit import GOOD, TRIAGE, Triage, ticket
from pydantic import SecretStr

from crmpilot.errors import CrmpilotError, Fatal, Retryable
from crmpilot.llm import (
    CircuitBreaker,
    Limiter,
    LLMBudgetExceeded,
    LLMCircuitOpen,
    LLMClient,
    LLMError,
    LLMInvalidOutput,
    LLMRateLimited,
    LLMSettings,
    LLMUnavailable,
    MemoryCache,
    Price,
    PriceTable,
    Prompt,
    RetryPolicy,
    build_llm_client,
)
from crmpilot.llm.breaker import BreakerState
from crmpilot.llm.cache import CachedAnswer, CacheKey
from crmpilot.llm.limits import TokenBucket
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.retry import parse_retry_after
from crmpilot.llm.testing import FakeProvider


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"}, 90.0),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": format_datetime(now + timedelta(seconds=5), usegmt=True)}, now=now) == 5.0


def test_error_tree_traits() -> None:
    assert issubclass(LLMError, CrmpilotError)
    assert issubclass(LLMRateLimited, Retryable) and issubclass(LLMUnavailable, Retryable)
    assert not issubclass(LLMInvalidOutput, Retryable)
    from crmpilot.llm import LLMAuthError, LLMConfigError, LLMQuotaExceeded

    assert all(issubclass(e, Fatal) for e in (LLMAuthError, LLMConfigError, LLMQuotaExceeded))
    err = LLMRateLimited("slow down", retry_after=1.5, attempts=2)
    assert err.retry_after == 1.5 and err.attempts == 2 and err.usage.requests == 0


def test_prices_by_longest_prefix_and_local_is_free() -> None:
    table = PriceTable()
    assert table.cost("openai", "gpt-4o-mini-2024-07-18", 1_000_000, 0) == Decimal("0.15")
    assert table.cost("openai", "gpt-4o-2024-08-06", 0, 1_000_000) == Decimal("10.00")
    assert table.cost("local", "gpt-4o", 1_000_000, 1_000_000) == 0
    assert table.cost("openai", "mystery-model", 10, 10) == 0
    custom = table.with_prices({"llama3.1:8b": Price(Decimal("0.01"), Decimal("0.02"))})
    assert custom.cost("vllm", "llama3.1:8b", 1_000_000, 1_000_000) == Decimal("0.03")


async def _take(bucket: TokenBucket, amount: float) -> float:
    t0 = time.monotonic()
    await bucket.acquire(amount)
    return time.monotonic() - t0


@pytest.mark.anyio
async def test_token_bucket_waits_for_refill_and_settles() -> None:
    bucket = TokenBucket(60)  # 1 per second, a minute's worth at once
    assert await _take(bucket, 60) < 0.05
    assert await _take(bucket, 0.3) >= 0.25
    bucket.adjust(-10)  # refund: the call used less than estimated
    assert await _take(bucket, 5) < 0.05
    with pytest.raises(LLMBudgetExceeded):
        await bucket.acquire(61)


@pytest.mark.anyio
async def test_token_bucket_burst_caps_what_is_spent_at_once() -> None:
    bucket = TokenBucket(600, burst=2)  # 10 per second, at most 2 at once
    assert await _take(bucket, 2) < 0.05
    assert await _take(bucket, 1) >= 0.08
    # a request bigger than the burst waits for a full bucket and goes into debt
    assert await _take(bucket, 5) >= 0.08
    assert bucket.level < 0


@pytest.mark.anyio
async def test_limiter_rejects_a_request_larger_than_the_tpm_budget() -> None:
    client = LLMClient(FakeProvider(lambda s, p: GOOD), limiter=Limiter(tpm=100), max_output_tokens=500)
    with pytest.raises(LLMBudgetExceeded):
        await client.run(TRIAGE, ticket())


@pytest.mark.anyio
async def test_limiter_holds_rpm() -> None:
    limiter = Limiter(max_concurrency=None, rpm=600, burst_seconds=0.1)  # 10 per second, 1 at once
    t0 = time.monotonic()
    for _ in range(4):  # the first at once, then one every 0.1 s
        async with limiter.reserve(1) as r:
            r.settle(tokens=1)
    assert time.monotonic() - t0 >= 0.25


def _state(b: CircuitBreaker) -> BreakerState:
    """``b.state`` read afresh: mypy would keep the narrowing of an ``assert b.state == ...`` past the calls that change
    it."""
    return b.state


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    b = CircuitBreaker("x", failure_threshold=2, reset_timeout=10, clock=lambda: now[0])
    b.record_failure()
    assert _state(b) == "closed"
    b.record_failure()
    assert _state(b) == "open"
    with pytest.raises(LLMCircuitOpen) as info:
        b.before_call()
    assert info.value.retry_after == 10
    now[0] = 10
    assert _state(b) == "half_open"
    b.before_call()  # the one trial
    with pytest.raises(LLMCircuitOpen):
        b.before_call()
    b.record_failure()
    assert _state(b) == "open"
    now[0] = 20
    b.before_call()
    b.record_success()
    assert _state(b) == "closed"


@pytest.mark.anyio
async def test_fake_provider_scripts_errors_and_outputs() -> None:
    fake = FakeProvider(script=[LLMUnavailable("down"), GOOD])
    client = LLMClient(fake, retry=RetryPolicy(initial_wait=0.01, max_wait=0.01, jitter=0), cache=MemoryCache())
    run = await client.run(TRIAGE, ticket())
    assert run.output == Triage(**GOOD) and run.attempts == 2 and run.provider == "fake"
    assert len(fake.calls) == 2


@pytest.mark.anyio
async def test_attempt_timeout_backstop_for_any_provider() -> None:
    fake = FakeProvider(lambda s, p: GOOD, delay=0.5)
    client = LLMClient(
        fake, retry=RetryPolicy(max_attempts=2, attempt_timeout=0.05, initial_wait=0.01, max_wait=0.01, jitter=0)
    )
    with pytest.raises(LLMUnavailable) as info:
        await client.run(TRIAGE, ticket())
    assert info.value.error_type == "LLMTimeout" and info.value.attempts == 2


@pytest.mark.anyio
async def test_stale_cached_answer_that_no_longer_validates_is_a_miss() -> None:
    cache = MemoryCache()
    fake = FakeProvider(lambda s, p: GOOD)
    client = LLMClient(fake, cache=cache, redact=False)
    from crmpilot.llm import input_hash

    key = CacheKey("fake", "fake-model", TRIAGE.name, TRIAGE.prompt.hash, input_hash(ticket()))
    await cache.put(key, CachedAnswer({"category": "Gone"}, model="fake-model"))
    run = await client.run(TRIAGE, ticket())
    assert not run.cache_hit and len(fake.calls) == 1


@pytest.mark.anyio
async def test_memory_cache_lru_and_ttl() -> None:
    now = [0.0]
    cache = MemoryCache(2, clock=lambda: now[0])
    keys = [CacheKey("p", "m", "t", "h", str(i)) for i in range(3)]
    for k in keys:
        await cache.put(k, CachedAnswer({}, "m"), ttl=5)
    assert await cache.get(keys[0]) is None and await cache.get(keys[2]) is not None
    now[0] = 6
    assert await cache.get(keys[2]) is None


def test_prompt_renders_values_without_interpreting_braces() -> None:
    p = Prompt("p", "1", "sys", "Text: {text} / {meta}")
    assert p.render_user({"text": "{evil} {0}", "meta": {"a": 1}}) == 'Text: {evil} {0} / {"a": 1}'


def test_settings_pick_local_without_key_or_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "CRMPILOT_LLM_API_KEY", "CRMPILOT_LLM_BASE_URL", "CRMPILOT_LLM_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    s = LLMSettings()
    assert s.resolved_provider == "local" and "provider=local" in s.describe()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    s = LLMSettings()
    assert s.resolved_provider == "openai" and s.api_key is not None
    assert "sk-secret-value" not in repr(s) and "sk-secret-value" not in s.describe()


def test_factory_builds_local_through_the_factory_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake = FakeProvider(name="local")
    client = build_llm_client(LLMSettings(provider="local", cache="off"), local_provider_factory=lambda: fake)
    assert client.providers == [fake] and client.cache is None


def test_factory_builds_openai_chain_with_fallbacks_and_task_models() -> None:
    s = LLMSettings(
        provider="openai",
        base_url="http://127.0.0.1:1/v1",
        api_key=SecretStr("sk-x"),
        model="gpt-4o-mini",
        fallback_models=("gpt-4o",),
        task_models={"summarize_email": "gpt-4.1"},
        rpm=100,
        tpm=10_000,
        max_concurrency=3,
    )
    client = build_llm_client(s)
    primary, fallback = client.providers
    task_primary, task_fallback = client.task_providers["summarize_email"]
    assert isinstance(primary, OpenAIProvider) and isinstance(fallback, OpenAIProvider)
    assert isinstance(task_primary, OpenAIProvider) and isinstance(task_fallback, OpenAIProvider)
    assert [primary.model, fallback.model] == ["gpt-4o-mini", "gpt-4o"]
    assert [task_primary.model, task_fallback.model] == ["gpt-4.1", "gpt-4o"]
    rpm = client.limiter.rpm
    assert client.limiter.max_concurrency == 3 and rpm is not None and rpm.per_minute == 100
    assert isinstance(client.cache, MemoryCache)


def test_no_io_or_model_loading_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, crmpilot.llm, crmpilot.llm.testing, crmpilot.privacy, crmpilot.telemetry; "
        "print('crmpilot.llm.local' in sys.modules, 'psycopg' in sys.modules, 'openai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


@pytest.mark.anyio
async def test_waiting_for_budget_past_the_deadline_fails_fast() -> None:
    client = LLMClient(FakeProvider(lambda s, p: GOOD), limiter=Limiter(rpm=60, burst_seconds=1))  # 1 per second
    await client.run(TRIAGE, ticket(1))
    from crmpilot.llm import LLMDeadlineExceeded

    t0 = time.monotonic()
    with pytest.raises(LLMDeadlineExceeded):
        await client.run(TRIAGE, ticket(2), deadline=0.3)
    assert time.monotonic() - t0 < 0.3


@pytest.mark.anyio
async def test_bench_keeps_rpm_and_concurrency() -> None:
    from crmpilot.llm.testing.bench import run_bench

    result = await run_bench(requests=40, rpm=3000, concurrency=3, latency=0.01, burst_seconds=0.2)
    assert result["requests"] == 40
    assert result["max_concurrent_seen_by_server"] <= 3
    assert result["measured_rpm_steady"] <= 3000 * 1.1
