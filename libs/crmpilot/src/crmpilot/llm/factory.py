"""``build_llm_client``: the composition root of the LLM client, from :class:`LLMSettings`.

Services call it once at startup (no I/O happens until the first call). Tests
pass fakes: a ``local_provider_factory``, a ``cache``, tracer/meter providers.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from crmpilot.llm.base import Provider
from crmpilot.llm.cache.base import ResponseCache
from crmpilot.llm.cache.memory import MemoryCache
from crmpilot.llm.cache.postgres import PostgresCache
from crmpilot.llm.calibration import load_calibrations
from crmpilot.llm.client import LLMClient
from crmpilot.llm.limits import Limiter
from crmpilot.llm.pricing import DEFAULT_PRICES, Price
from crmpilot.llm.retry import RetryPolicy
from crmpilot.llm.settings import LLMSettings
from crmpilot.privacy.redaction import Redactor

__all__ = ["build_llm_client", "build_cache"]


def _default_local_provider() -> Provider:
    from crmpilot.llm.local import LocalProvider  # loads the embedded model: only when asked for

    return LocalProvider()


def build_cache(settings: LLMSettings) -> ResponseCache | None:
    """The response cache the settings ask for (``None`` when ``cache=off``)."""
    if settings.cache == "off":
        return None
    if settings.cache == "memory":
        return MemoryCache(settings.cache_max_entries)
    url = settings.database_url
    if url is None:
        from crmpilot.settings import DatabaseSettings

        url = DatabaseSettings().url
    return PostgresCache(url.get_secret_value(), schema=settings.cache_schema)


def build_llm_client(
    settings: LLMSettings | None = None,
    *,
    local_provider_factory: Callable[[], Provider] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    cache: ResponseCache | None = None,
    limiter: Limiter | None = None,
    redactor: Redactor | None = None,
) -> LLMClient:
    """An :class:`LLMClient` wired from ``settings`` (default: read from the environment).

    ``cache`` and ``limiter`` override what the settings would build (pass a
    shared limiter to make several clients share one budget).
    """
    s = settings or LLMSettings()
    task_providers: dict[str, list[Provider]] = {}
    if s.resolved_provider == "local":
        chain: list[Provider] = [(local_provider_factory or _default_local_provider)()]
    else:
        from crmpilot.llm.openai_provider import OpenAIProvider

        primary = OpenAIProvider(
            model=s.model,
            base_url=s.base_url,
            api_key=s.api_key,
            organization=s.organization,
            timeout=s.timeout,
            max_reasks=s.max_reasks,
            response_format=s.response_format,
            max_output_tokens=s.max_output_tokens,
            temperature=s.temperature,
            provider_name=s.provider_name,
            logprobs=s.logprobs,
        )
        fallbacks: list[Provider] = [primary.with_model(m) for m in s.fallback_models]
        chain = [primary, *fallbacks]
        task_providers = {task: [primary.with_model(m), *fallbacks] for task, m in s.task_models.items()}
    prices = DEFAULT_PRICES.with_prices({m: Price(p.input, p.output) for m, p in s.prices.items()})
    return LLMClient(
        chain,
        task_providers=task_providers,
        cache=cache if cache is not None else build_cache(s),
        cache_ttl=s.cache_ttl,
        limiter=limiter
        or Limiter(max_concurrency=s.max_concurrency, rpm=s.rpm, tpm=s.tpm, burst_seconds=s.burst_seconds),
        retry=RetryPolicy(
            max_attempts=s.max_attempts,
            deadline=s.deadline,
            attempt_timeout=s.timeout * (1 + s.max_reasks) + 5.0,
        ),
        redactor=redactor,
        redact=s.redact,
        prices=prices,
        breaker_failures=s.breaker_failures,
        breaker_reset=s.breaker_reset,
        max_output_tokens=s.max_output_tokens,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        calibrations=load_calibrations(s.calibration_file) if s.calibration_file else None,
    )
