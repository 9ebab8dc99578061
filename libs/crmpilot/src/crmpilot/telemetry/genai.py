"""OpenTelemetry GenAI semantic conventions for model calls: attribute names, instruments, buckets.

Tracers and meters are built from providers passed in (tests use an
``InMemorySpanExporter`` / ``InMemoryMetricReader``); without one, the global
providers are used, which are no-ops until the service's bootstrap installs
real ones. Nothing is configured at import time.

The attribute names are spelled out here rather than imported from
``opentelemetry.semconv._incubating`` (a private module whose names move
between releases); the values follow the GenAI conventions ("development"
status) and the note in ``shared/notes/opentelemetry.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

__all__ = [
    "INSTRUMENTATION_NAME",
    "TOKEN_USAGE_BUCKETS",
    "DURATION_BUCKETS",
    "GenAIMetrics",
    "get_tracer",
    "get_meter",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_TOKEN_TYPE",
    "ERROR_TYPE",
    "SERVER_ADDRESS",
    "SERVER_PORT",
]

INSTRUMENTATION_NAME = "crmpilot.llm"

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

TOKEN_USAGE_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))
"""1, 4, 16, … 67108864 tokens (the convention's advice)."""

DURATION_BUCKETS: tuple[float, ...] = tuple(round(0.01 * 2**i, 2) for i in range(14))
"""0.01, 0.02, 0.04, … 81.92 seconds (the convention's advice)."""


def get_tracer(tracer_provider: TracerProvider | None = None, name: str = INSTRUMENTATION_NAME) -> Tracer:
    """A tracer from ``tracer_provider`` (or the global one)."""
    return trace.get_tracer(name, tracer_provider=tracer_provider)


def get_meter(meter_provider: MeterProvider | None = None, name: str = INSTRUMENTATION_NAME) -> Meter:
    """A meter from ``meter_provider`` (or the global one)."""
    return metrics.get_meter(name, meter_provider=meter_provider)


class GenAIMetrics:
    """The GenAI client histograms plus crmpilot's cost and cache counters."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_USAGE_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.cost = meter.create_counter("crmpilot.llm.cost", unit="USD", description="Money spent on model calls")
        self.cache_lookups = meter.create_counter(
            "crmpilot.llm.cache.lookups",
            unit="{lookup}",
            description="Response cache lookups, by crmpilot.llm.cache.hit",
        )
        self.retries = meter.create_counter("crmpilot.llm.retries", unit="{retry}", description="Retried model calls")

    def record_call(
        self,
        attributes: Mapping[str, Any],
        *,
        duration_s: float,
        tokens_in: int | None,
        tokens_out: int | None,
        cost_usd: float = 0.0,
    ) -> None:
        attrs = dict(attributes)
        self.operation_duration.record(duration_s, attrs)
        if tokens_in is not None:
            self.token_usage.record(tokens_in, {**attrs, GEN_AI_TOKEN_TYPE: "input"})
        if tokens_out is not None:
            self.token_usage.record(tokens_out, {**attrs, GEN_AI_TOKEN_TYPE: "output"})
        if cost_usd:
            self.cost.add(cost_usd, attrs)
