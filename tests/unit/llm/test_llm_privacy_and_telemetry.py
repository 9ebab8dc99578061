"""What leaves the process (redacted text only) and what the trace and metrics show."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from llm_testkit import GOOD, TRIAGE, client_for, ticket
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from crmpilot.llm import LLMAuthError, MemoryCache
from crmpilot.llm.testing import OpenAITestServer, Reply, rate_limited, unauthorized
from crmpilot.telemetry import DURATION_BUCKETS, TOKEN_USAGE_BUCKETS

pytestmark = pytest.mark.anyio

EMAIL = "jane.roe@example.org"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"


def planted() -> dict[str, str]:
    return {
        "subject": f"Refund to card {CARD}",
        "description": f"Please call me on {PHONE} or write to {EMAIL}. My IBAN is {IBAN}. Again: {EMAIL}",
    }


async def test_server_never_receives_planted_pii_nor_do_logs(
    server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enqueue(rate_limited(0.01))  # a retry, so the retry path logs too
    client = client_for(server)
    run = await client.run(TRIAGE, planted())
    body = server.received_bytes().decode()
    for secret in (EMAIL, PHONE, CARD, IBAN, "4111111111111111", "jane.roe"):
        assert secret not in body
        assert secret not in caplog.text
    user = server.requests[-1].messages[-1]["content"]
    assert "<EMAIL_1>" in user and "<PHONE_1>" in user and "<CARD_1>" in user and "<IBAN_1>" in user
    assert user.count("<EMAIL_1>") == 2  # stable within one input
    assert run.redacted == {"CARD": 1, "PHONE": 1, "EMAIL": 1, "IBAN": 1}
    await client.aclose()


async def test_placeholders_are_restored_only_in_named_output_fields(server: OpenAITestServer) -> None:
    server.enqueue(Reply({**GOOD, "reply_to": "<EMAIL_1>"}))
    client = client_for(server)
    run = await client.run(TRIAGE, planted())
    assert run.output.reply_to == EMAIL
    await client.aclose()


async def test_hash_and_cache_key_use_the_redacted_input(server: OpenAITestServer) -> None:
    client = client_for(server, cache=MemoryCache())
    a = await client.run(TRIAGE, {"subject": "x", "description": "mail me at a@example.com"})
    b = await client.run(TRIAGE, {"subject": "x", "description": "mail me at b@example.com"})
    assert a.input_hash == b.input_hash and b.cache_hit and server.request_count == 1
    await client.aclose()


async def test_span_carries_genai_attributes_and_retry_events(
    server: OpenAITestServer, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.enqueue(rate_limited(0.01), Reply(GOOD, usage=(120, 30)))
    client = client_for(server, tracer_provider=tracer_provider)
    run = await client.run(TRIAGE, planted())
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a is not None
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2025-01-01"
    assert a["gen_ai.response.id"] == "chatcmpl-test-2"
    assert a["gen_ai.usage.input_tokens"] == 120 and a["gen_ai.usage.output_tokens"] == 30
    reasons = a["gen_ai.response.finish_reasons"]
    assert isinstance(reasons, Sequence) and tuple(reasons) == ("stop",)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port
    assert a["crmpilot.llm.attempts"] == 2
    assert [e.name for e in span.events] == ["gen_ai.client.retry"]
    retry = span.events[0].attributes
    assert retry is not None and retry["error.type"] == "LLMRateLimited"
    assert run.trace_id == f"{span.context.trace_id:032x}"
    # nothing of the content is on the span
    flat = repr(dict(a)) + repr([dict(e.attributes or {}) for e in span.events])
    assert EMAIL not in flat and "refund" not in flat.lower()
    await client.aclose()


async def test_failed_call_span_has_error_type(
    server: OpenAITestServer, tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.enqueue(unauthorized())
    client = client_for(server, tracer_provider=tracer_provider)
    with pytest.raises(LLMAuthError):
        await client.run(TRIAGE, ticket())
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes
    assert attributes is not None and attributes["error.type"] == "LLMAuthError"
    assert span.status.status_code is StatusCode.ERROR
    await client.aclose()


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


async def test_genai_metrics_with_explicit_buckets(
    server: OpenAITestServer, meter_provider: MeterProvider, metric_reader: InMemoryMetricReader
) -> None:
    server.enqueue(Reply(GOOD, usage=(120, 30)))
    client = client_for(server, meter_provider=meter_provider, cache=MemoryCache())
    await client.run(TRIAGE, ticket())
    await client.run(TRIAGE, ticket())  # cache hit
    points = _points(metric_reader)
    usage = points["gen_ai.client.token.usage"]
    assert all(isinstance(p, HistogramDataPoint) for p in usage)
    by_type = {p.attributes["gen_ai.token.type"]: p for p in usage}
    assert by_type["input"].sum == 120 and by_type["output"].sum == 30
    assert tuple(by_type["input"].explicit_bounds) == TOKEN_USAGE_BUCKETS
    (duration,) = points["gen_ai.client.operation.duration"]
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS and duration.count == 1
    assert duration.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    lookups = {p.attributes["crmpilot.llm.cache.hit"]: p.value for p in points["crmpilot.llm.cache.lookups"]}
    assert lookups == {False: 1, True: 1}
    assert sum(p.value for p in points["crmpilot.llm.cost"]) > 0
    await client.aclose()
