"""Process-wide OpenTelemetry setup for a service, from the standard ``OTEL_*`` variables.

``OTEL_SERVICE_NAME`` names the service (default: the service's own name);
``OTEL_TRACES_EXPORTER`` picks the exporter: ``none`` (default: spans are still
made, so trace ids reach the warehouse and the CRM audit, but nothing is
exported) or ``console`` (JSON spans on stderr). Called once from a service's
``__main__``; libraries only take providers as arguments.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

__all__ = ["setup_tracing"]


def setup_tracing(service: str) -> TracerProvider:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter not in {"none", "console"}:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r} is not supported here; use 'none' or 'console'")
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
