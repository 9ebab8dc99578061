"""Fixtures for the LLM client tests: the OpenAI-protocol test server and in-memory telemetry."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from llm_testkit import GOOD
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crmpilot.llm.testing import OpenAITestServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _collect_earlier_garbage() -> None:
    """Collect clients other test modules left unclosed before this test's event loop runs.

    Their finalizers would otherwise run inside this test's loop and be reported
    as this test's errors ("Event loop is closed" from a loop long gone).
    """
    gc.collect()


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(lambda req: GOOD) as srv:
        yield srv


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[metric_reader])
