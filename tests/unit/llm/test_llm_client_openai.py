"""The LLM client through the real openai SDK against the OpenAI-protocol test server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC
from decimal import Decimal

import pytest
from llm_testkit import FAST_RETRY, GOOD, TRIAGE, client_for, provider_for, ticket

from crmpilot.errors import Fatal, Retryable
from crmpilot.llm import (
    Limiter,
    LLMAuthError,
    LLMBadRequest,
    LLMClient,
    LLMInvalidOutput,
    LLMQuotaExceeded,
    LLMRateLimited,
    LLMUnavailable,
    MemoryCache,
    RetryPolicy,
)
from crmpilot.llm.testing import (
    Action,
    ChatRequest,
    Hang,
    OpenAITestServer,
    Reply,
    bad_request,
    insufficient_quota,
    invalid_json,
    rate_limited,
    schema_invalid,
    server_error,
    unauthorized,
)

pytestmark = pytest.mark.anyio


async def test_success_reports_usage_cost_and_provenance(server: OpenAITestServer) -> None:
    server.enqueue(Reply(GOOD, usage=(1000, 500)))
    async with client_for(server) as client:
        run = await client.run(TRIAGE, ticket())
    assert run.output.category == "Billing"
    assert (run.tokens_in, run.tokens_out, run.attempts) == (1000, 500, 1)
    # gpt-4o-mini: 0.15 USD / 1M in, 0.60 USD / 1M out
    assert run.cost_usd == Decimal("0.00045")
    assert run.model == "gpt-4o-mini" and run.model_version == "gpt-4o-mini-2025-01-01"
    assert run.response_id == "chatcmpl-test-1" and not run.cache_hit
    assert run.prompt_hash == TRIAGE.prompt.hash and len(run.input_hash) == 32
    from datetime import datetime

    prov = run.provenance(
        source_topic="crm.case.events",
        source_partition=0,
        source_offset=7,
        source_event_id="e1",
        event_time=datetime.now(UTC),
    )
    assert prov.cost_usd == Decimal("0.00045") and prov.attempts == 1


async def test_request_carries_strict_json_schema_and_sdk_retries_are_off(server: OpenAITestServer) -> None:
    server.enqueue(server_error(500))
    client = client_for(server, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(LLMUnavailable):
        await client.run(TRIAGE, ticket())
    assert server.request_count == 1  # the SDK did not retry on its own
    rf = server.requests[0].response_format
    assert rf is not None and rf["type"] == "json_schema"
    assert rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"]["properties"]["category"]["enum"] == ["Billing", "Refund", "Other"]
    await client.aclose()


async def test_429_retry_after_is_honoured_then_success(server: OpenAITestServer) -> None:
    server.enqueue(rate_limited(retry_after=0.2), rate_limited(retry_after=0.2, ms=True))
    client = client_for(server)
    t0 = time.monotonic()
    run = await client.run(TRIAGE, ticket())
    elapsed = time.monotonic() - t0
    assert run.attempts == 3 and server.request_count == 3
    assert elapsed >= 0.4  # two waits of at least Retry-After
    await client.aclose()


async def test_retry_after_beyond_the_deadline_gives_up_at_once(server: OpenAITestServer) -> None:
    server.enqueue(rate_limited(retry_after=30))
    client = client_for(server, retry=RetryPolicy(max_attempts=5, deadline=2.0))
    t0 = time.monotonic()
    with pytest.raises(LLMRateLimited) as info:
        await client.run(TRIAGE, ticket())
    assert time.monotonic() - t0 < 2.0
    assert info.value.retry_after == 30 and info.value.attempts == 1
    assert isinstance(info.value, Retryable)
    await client.aclose()


async def test_5xx_burst_recovers(server: OpenAITestServer) -> None:
    server.enqueue(server_error(500), server_error(503), server_error(502))
    client = client_for(server)
    run = await client.run(TRIAGE, ticket())
    assert run.attempts == 4 and server.request_count == 4
    await client.aclose()


async def test_5xx_storm_exhausts_bounded_attempts(server: OpenAITestServer) -> None:
    server.enqueue(*[server_error(503)] * 10)
    client = client_for(server, retry=RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02, jitter=0))
    with pytest.raises(LLMUnavailable) as info:
        await client.run(TRIAGE, ticket())
    assert info.value.attempts == 3 and server.request_count == 3
    assert info.value.status_code == 503
    await client.aclose()


async def test_hang_hits_the_timeout_and_is_retried(server: OpenAITestServer) -> None:
    server.enqueue(Hang(10))
    client = client_for(server, provider_kw={"timeout": 0.3})
    t0 = time.monotonic()
    run = await client.run(TRIAGE, ticket())
    assert time.monotonic() - t0 >= 0.3
    assert run.attempts == 2 and server.request_count == 2
    await client.aclose()


async def test_invalid_output_is_repaired_by_one_reask(server: OpenAITestServer) -> None:
    server.enqueue(invalid_json(), Reply(GOOD, usage=(100, 10)))
    client = client_for(server)
    run = await client.run(TRIAGE, ticket())
    assert run.output.category == "Billing"
    assert run.attempts == 2 and server.request_count == 2
    reask = server.requests[1].messages
    assert reask[-2]["role"] == "assistant" and reask[-1]["role"] == "user"
    assert "not valid" in reask[-1]["content"]
    assert run.tokens_in > 100  # both requests are paid for
    await client.aclose()


async def test_reask_exhausted_raises_invalid_output_with_usage(server: OpenAITestServer) -> None:
    server.enqueue(Reply({"category": "Lottery", "priority": "High"}, usage=(200, 20)), schema_invalid())
    client = client_for(server)
    with pytest.raises(LLMInvalidOutput) as info:
        await client.run(TRIAGE, ticket())
    err = info.value
    assert server.request_count == 2  # one re-ask, never retried as if it were a 429
    assert err.attempts == 2 and err.usage.requests == 2
    assert err.usage.tokens_in >= 200 and err.usage.cost_usd > 0
    assert err.errors and all("input" not in e for e in err.errors)
    assert not isinstance(err, Retryable)
    await client.aclose()


@pytest.mark.parametrize(
    ("fault", "error", "fatal"),
    [
        (unauthorized(), LLMAuthError, True),
        (insufficient_quota(), LLMQuotaExceeded, True),
        (bad_request("maximum context length exceeded", code="context_length_exceeded"), LLMBadRequest, False),
    ],
)
async def test_non_retryable_errors_are_not_retried(
    server: OpenAITestServer, fault: Action, error: type[Exception], fatal: bool
) -> None:
    server.enqueue(fault)
    client = client_for(server)
    with pytest.raises(error) as info:
        await client.run(TRIAGE, ticket())
    assert server.request_count == 1
    assert isinstance(info.value, Fatal) is fatal
    assert isinstance(info.value.__cause__, Exception)  # translated at the edge, from the SDK error
    await client.aclose()


async def test_wrong_api_key_against_a_checking_server() -> None:
    with OpenAITestServer(lambda req: GOOD, api_key="sk-right") as srv:
        client = client_for(srv)  # sends sk-test
        with pytest.raises(LLMAuthError):
            await client.run(TRIAGE, ticket())
        assert srv.request_count == 1
        await client.aclose()


async def test_second_identical_call_is_a_cache_hit(server: OpenAITestServer) -> None:
    server.enqueue(Reply(GOOD, usage=(1000, 500)))
    client = client_for(server, cache=MemoryCache())
    first = await client.run(TRIAGE, ticket())
    second = await client.run(TRIAGE, ticket())
    assert server.request_count == 1
    assert not first.cache_hit and second.cache_hit
    assert second.output == first.output and second.cost_usd == 0 and second.input_hash == first.input_hash
    third = await client.run(TRIAGE, ticket(), bypass_cache=True)
    assert not third.cache_hit and server.request_count == 2
    await client.aclose()


async def test_concurrent_identical_calls_pay_once(server: OpenAITestServer) -> None:
    server.latency = 0.1
    client = client_for(server, cache=MemoryCache())
    runs = await asyncio.gather(*(client.run(TRIAGE, ticket()) for _ in range(5)))
    assert server.request_count == 1
    assert sum(r.cache_hit for r in runs) == 4
    await client.aclose()


async def test_concurrency_cap_is_never_exceeded(server: OpenAITestServer) -> None:
    server.latency = 0.08
    client = client_for(server, limiter=Limiter(max_concurrency=3))
    await asyncio.gather(*(client.run(TRIAGE, ticket(i)) for i in range(12)))
    assert server.request_count == 12
    assert server.max_concurrent <= 3
    assert server.max_concurrent >= 2  # the cap is used, not just respected
    assert client.limiter.max_in_flight <= 3
    await client.aclose()


async def test_endpoint_without_json_schema_gets_json_object(server: OpenAITestServer) -> None:
    server.supports_json_schema = False
    provider = provider_for(server)
    client = LLMClient(provider, retry=FAST_RETRY)
    run = await client.run(TRIAGE, ticket())
    assert run.output.category == "Billing"
    formats = [r.response_format for r in server.requests]
    first = formats[0]
    assert first is not None and first["type"] == "json_schema" and formats[1] == {"type": "json_object"}
    assert "JSON Schema" in server.requests[1].messages[0]["content"]
    await client.run(TRIAGE, ticket(2))  # the downgrade sticks
    assert server.requests[-1].response_format == {"type": "json_object"}
    await client.aclose()


async def test_missing_usage_is_estimated(server: OpenAITestServer) -> None:
    server.enqueue(Reply(GOOD, usage=None))
    client = client_for(server)
    run = await client.run(TRIAGE, ticket())
    assert run.usage_estimated and run.tokens_in > 0 and run.tokens_out > 0 and run.cost_usd > 0
    await client.aclose()


async def test_fenced_json_is_accepted(server: OpenAITestServer) -> None:
    server.enqueue(Reply('```json\n{"category": "Refund", "priority": "Low"}\n```'))
    client = client_for(server)
    run = await client.run(TRIAGE, ticket())
    assert run.output.category == "Refund" and run.attempts == 1
    await client.aclose()


async def test_fallback_model_is_used_when_the_primary_breaker_opens() -> None:
    def answer(req: ChatRequest) -> object:
        return server_error(503) if req.model == "gpt-4o-mini" else GOOD

    with OpenAITestServer(answer) as srv:
        primary = provider_for(srv, "gpt-4o-mini")
        fallback = primary.with_model("gpt-4o")
        client = LLMClient(
            [primary, fallback],
            retry=RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0),
            breaker_failures=2,
            breaker_reset=60,
        )
        first = await client.run(TRIAGE, ticket(1))
        assert first.model == "gpt-4o" and first.attempts == 3  # 2 failed on the primary + 1
        assert client.breaker_for(primary).state == "open"
        primary_calls = sum(r.model == "gpt-4o-mini" for r in srv.requests)
        second = await client.run(TRIAGE, ticket(2))
        assert second.model == "gpt-4o" and second.attempts == 1
        assert sum(r.model == "gpt-4o-mini" for r in srv.requests) == primary_calls  # skipped while open
        await client.aclose()


async def test_per_task_model(server: OpenAITestServer) -> None:
    primary = provider_for(server, "gpt-4o-mini")
    client = LLMClient(primary, task_providers={"triage": [primary.with_model("gpt-4o")]}, retry=FAST_RETRY)
    run = await client.run(TRIAGE, ticket())
    assert run.model == "gpt-4o" and server.requests[0].model == "gpt-4o"
    await client.aclose()


async def test_models_endpoint(server: OpenAITestServer) -> None:
    provider = provider_for(server)
    assert "gpt-4o-mini" in await provider.list_models()
    await provider.aclose()
