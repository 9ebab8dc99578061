"""crmpilot.telemetry: OpenTelemetry helpers (tracers and meters from providers passed in, semantic conventions)."""

from crmpilot.telemetry.genai import DURATION_BUCKETS, TOKEN_USAGE_BUCKETS, GenAIMetrics, get_meter, get_tracer

__all__ = ["GenAIMetrics", "get_tracer", "get_meter", "TOKEN_USAGE_BUCKETS", "DURATION_BUCKETS"]
