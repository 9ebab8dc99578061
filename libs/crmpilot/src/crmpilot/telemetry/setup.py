"""Process-wide OpenTelemetry setup for a service, from the standard ``OTEL_*`` variables.

:func:`setup_tracing` is called once from a service's ``__main__`` (and by the
CLI commands that produce); libraries only take providers as arguments.

``OTEL_TRACES_EXPORTER`` (comma-separated) picks the exporters:

- ``none`` (default): spans are still made, so trace ids reach the warehouse and
  the CRM audit and travel in Kafka headers, but nothing is exported;
- ``otlp``: OTLP/HTTP protobuf (``opentelemetry-exporter-otlp-proto-http``); the
  SDK reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` (base URL, ``/v1/traces`` appended),
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (full URL), ``…_HEADERS``,
  ``…_TIMEOUT``, ``…_COMPRESSION`` and ``…_CERTIFICATE``. Only the
  ``http/protobuf`` protocol is installed: ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``
  is refused rather than silently ignored;
- ``console``: JSON spans on stderr.

``OTEL_METRICS_EXPORTER`` does the same for the OpenTelemetry metrics (the
GenAI ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``
histograms and crmpilot's cost, cache and retry counters): ``none`` (default:
Prometheus ``/metrics`` is the services' usual scrape), ``otlp`` (``/v1/metrics``
under the same endpoint variables, ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` for a
full URL) or ``console``, exported every ``OTEL_METRIC_EXPORT_INTERVAL`` ms
(SDK default 60,000) and at shutdown.

``OTEL_SERVICE_NAME`` names the service (default: the name passed in);
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and ``OTEL_BSP_*`` are read
by the SDK itself. Context travels as W3C ``traceparent``/``tracestate`` (Kafka
headers, HTTP headers): ``OTEL_PROPAGATORS``, if set, must include ``tracecontext``.

Client spans for the CRM's HTTP calls (``requests``, which simple-salesforce
uses) and for PostgreSQL statements (``psycopg`` 3, sync and async cursors) are
made here by wrapping ``requests.Session.send`` and the cursors' ``execute`` /
``executemany``. This is what ``opentelemetry-instrumentation-requests`` and
``-psycopg`` do; they are not dependencies of crmpilot (yet), so a few lines
stand in for them, following the HTTP and database semantic conventions. Unlike
those instrumentations, a span is made only inside an existing trace (a record
being processed): connection checks and logins outside any event make no root
spans, and the exporter's own HTTP calls are never traced.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from crmpilot.errors import CrmpilotError

__all__ = ["setup_tracing", "TelemetryConfigError", "EXPORTERS"]

EXPORTERS = ("otlp", "console", "none")
_PATCHED = "__crmpilot_traced__"
_QUERY_TEXT_MAX = 1000
_TARGET = re.compile(r'\b(?:into|from|update|table)\s+((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)', re.IGNORECASE)

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E")


class TelemetryConfigError(CrmpilotError, ValueError):
    """An ``OTEL_*`` variable asks for something this installation cannot do."""


def setup_tracing(service: str) -> TracerProvider:
    """Install the global tracer provider configured from the ``OTEL_*`` environment variables.

    Idempotent: if an SDK provider is already installed, it is returned unchanged.
    Raises :class:`TelemetryConfigError` for an exporter, protocol or propagator
    that cannot be honoured.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    exporters = _exporters(os.environ)
    metric_exporters = _metric_exporters(os.environ)
    _check_propagators(os.environ)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if metric_exporters:
        readers = [PeriodicExportingMetricReader(e) for e in metric_exporters]
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    tracer = provider.get_tracer("crmpilot.telemetry")
    _instrument_requests(tracer)
    _instrument_psycopg(tracer)
    return provider


def _chosen(env: Mapping[str, str], signal: str, otlp: Callable[[], E], console: Callable[[], E]) -> list[E]:
    """The exporters ``OTEL_<signal>_EXPORTER`` names (``none`` by default), OTLP only over http/protobuf."""
    variable = f"OTEL_{signal}_EXPORTER"
    names = [n.strip().lower() for n in env.get(variable, "none").split(",") if n.strip()] or ["none"]
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise TelemetryConfigError(
            f"{variable}={env.get(variable)!r}: {', '.join(unknown)} not supported; use {', '.join(EXPORTERS)}"
        )
    exporters: list[E] = []
    if "otlp" in names:
        protocol = (
            env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        if protocol.strip().lower() != "http/protobuf":
            raise TelemetryConfigError(
                f"OTLP protocol {protocol!r} is not installed; use http/protobuf (port 4318 on collectors)"
            )
        exporters.append(otlp())
    if "console" in names:
        exporters.append(console())
    return exporters


def _otlp_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_metrics() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    return _chosen(env, "TRACES", _otlp_spans, ConsoleSpanExporter)


def _metric_exporters(env: Mapping[str, str]) -> list[MetricExporter]:
    return _chosen(env, "METRICS", _otlp_metrics, ConsoleMetricExporter)


def _check_propagators(env: Mapping[str, str]) -> None:
    configured = env.get("OTEL_PROPAGATORS")
    if configured and "tracecontext" not in [p.strip().lower() for p in configured.split(",")]:
        raise TelemetryConfigError(
            f"OTEL_PROPAGATORS={configured!r} lacks 'tracecontext': crmpilot carries W3C traceparent in Kafka headers"
        )


# --- client spans: requests (the CRM's HTTP calls) and psycopg (PostgreSQL) ----------------


def _in_trace() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def _once(owner: Any, name: str, wrap: Callable[[F], F]) -> None:
    original = getattr(owner, name)
    if getattr(original, _PATCHED, False):
        return
    wrapped = wrap(original)
    setattr(wrapped, _PATCHED, True)
    setattr(owner, name, wrapped)


def _fail(span: Span, error_type: str, description: str | None = None) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description))


def _instrument_requests(tracer: Tracer) -> None:
    def wrap(send: F) -> F:
        @functools.wraps(send)
        def traced_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            if not _in_trace():
                return send(self, request, **kwargs)
            method = (request.method or "GET").upper()
            parts = urlsplit(request.url or "")
            attributes: dict[str, Any] = {
                "http.request.method": method,
                # no query (a SOQL query may quote customer values), no credentials
                "url.full": urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")),
                "server.address": parts.hostname or "",
            }
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
            if port:
                attributes["server.port"] = port
            with tracer.start_as_current_span(
                method, kind=SpanKind.CLIENT, attributes=attributes, set_status_on_exception=False
            ) as span:
                propagate.inject(request.headers)
                try:
                    response = send(self, request, **kwargs)
                except requests.RequestException as exc:
                    _fail(span, type(exc).__qualname__, str(exc))
                    raise
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 400:
                    _fail(span, str(response.status_code))
                return response

        return traced_send  # type: ignore[return-value]  # the wrapper has the wrapped method's signature (functools.wraps)

    _once(requests.Session, "send", wrap)


def _db_attributes(cursor: Any, query: Any) -> tuple[str, dict[str, Any]]:
    """Span name and attributes of one statement (its text without parameters)."""
    text = query.as_string(cursor.connection) if hasattr(query, "as_string") else str(query)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    operation = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    target = _TARGET.search(text[:500])
    collection = target.group(1).replace('"', "") if target else None
    info = cursor.connection.info
    attributes: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.namespace": info.dbname,
        "db.query.text": text if len(text) <= _QUERY_TEXT_MAX else text[: _QUERY_TEXT_MAX - 1] + "…",
        "server.address": info.host,
        "server.port": info.port,
    }
    if operation:
        attributes["db.operation.name"] = operation
    if collection:
        attributes["db.collection.name"] = collection
    name = " ".join(p for p in (operation, collection) if p) or "postgresql"
    return name, attributes


@contextmanager
def _db_span(tracer: Tracer, cursor: Any, query: Any) -> Iterator[None]:
    name, attributes = _db_attributes(cursor, query)
    with tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes, set_status_on_exception=False
    ) as span:
        try:
            yield
        except psycopg.Error as exc:
            _fail(span, type(exc).__qualname__, exc.sqlstate or None)
            raise


def _instrument_psycopg(tracer: Tracer) -> None:
    def wrap_sync(method: F) -> F:
        @functools.wraps(method)
        def traced(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if not _in_trace():
                return method(self, query, *args, **kwargs)
            with _db_span(tracer, self, query):
                return method(self, query, *args, **kwargs)

        return traced  # type: ignore[return-value]  # the wrapper has the wrapped method's signature (functools.wraps)

    def wrap_async(method: F) -> F:
        @functools.wraps(method)
        async def traced(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if not _in_trace():
                return await method(self, query, *args, **kwargs)
            with _db_span(tracer, self, query):
                return await method(self, query, *args, **kwargs)

        return traced  # type: ignore[return-value]  # the wrapper has the wrapped method's signature (functools.wraps)

    for name in ("execute", "executemany"):
        _once(psycopg.Cursor, name, wrap_sync)
        _once(psycopg.AsyncCursor, name, wrap_async)
