"""The shared LLM client: every service's one way to run a task on a model.

``await client.run(spec, payload)`` returns a :class:`TaskRun` (the validated
output and its provenance) or raises a ``crmpilot.llm.errors`` type. In order:

1. redact PII from every string of the payload (the redacted payload is what
   is hashed, cached and sent);
2. for each provider of the chain (primary, then fallbacks): look the answer
   up in the response cache; on a miss, call the provider under the process's
   limits (concurrency, RPM, TPM), its circuit breaker and the retry policy
   (tenacity: backoff with jitter, Retry-After honoured, bounded attempts and
   total deadline); store the answer; a provider whose breaker is open, or
   whose retries ran out on a retryable error, hands over to the next;
3. put redacted values back into the output fields the task names, nested items and lists too
   (``TaskSpec.restore_fields``);
4. cost the call from the price table and record it: one ``chat {model}`` span
   (kind CLIENT, GenAI attributes, an event per retry) and the GenAI metrics.

Neither the payload nor the answer is ever logged or put on a span.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState

from crmpilot.errors import Retryable
from crmpilot.events.models import Provenance
from crmpilot.llm.base import Completion, ConfidenceSource, Provider, TaskSpec, Usage, input_hash
from crmpilot.llm.breaker import CircuitBreaker
from crmpilot.llm.cache.base import CachedAnswer, CacheKey, ResponseCache
from crmpilot.llm.calibration import Calibrations
from crmpilot.llm.errors import (
    LLMCacheError,
    LLMCircuitOpen,
    LLMDeadlineExceeded,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
)
from crmpilot.llm.limits import Limiter
from crmpilot.llm.pricing import DEFAULT_PRICES, PriceTable
from crmpilot.llm.retry import RetryPolicy
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.privacy.redaction import Redaction, Redactor
from crmpilot.telemetry import genai as sc
from crmpilot.telemetry import metrics as prom

__all__ = ["LLMClient", "TaskRun"]

log = logging.getLogger(__name__)

OutT = TypeVar("OutT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class TaskRun(Generic[OutT]):
    """A validated output and how it was made (the LLM part of a result's provenance)."""

    output: OutT
    provider: str
    model: str
    model_version: str | None
    prompt_id: str
    prompt_version: str
    prompt_hash: str
    input_hash: str
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    latency_ms: float
    attempts: int
    """Requests made to the model for this result (retries and re-asks included; 1 on a cache hit)."""
    cache_hit: bool
    trace_id: str | None
    response_id: str | None = None
    usage_estimated: bool = False
    redacted: Mapping[str, int] = field(default_factory=dict)
    """How many distinct values of each PII kind were redacted from the input."""
    tokens_cached: int = 0
    """Of ``tokens_in``, the prompt tokens the endpoint served from its prompt cache (``cached_tokens``)."""
    confidence_source: ConfidenceSource = "self_report"
    """Where the output's confidences come from: token log-probabilities, the model's report, the local model."""

    @property
    def usage(self) -> Usage:
        return Usage(self.tokens_in, self.tokens_out, 0 if self.cache_hit else self.attempts, self.cost_usd)

    def provenance(
        self,
        *,
        source_topic: str,
        source_partition: int,
        source_offset: int,
        source_event_id: str,
        event_time: datetime,
        processed_at: datetime | None = None,
    ) -> Provenance:
        """The full :class:`~crmpilot.events.models.Provenance` of a result, with its source."""
        return Provenance(
            provider=self.provider,
            model=self.model,
            model_version=self.model_version,
            prompt_id=self.prompt_id,
            prompt_version=self.prompt_version,
            prompt_hash=self.prompt_hash,
            input_hash=self.input_hash,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_usd=self.cost_usd,
            latency_ms=self.latency_ms,
            attempts=max(1, self.attempts),
            cache_hit=self.cache_hit,
            trace_id=self.trace_id,
            confidence_source=self.confidence_source,
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            source_event_id=source_event_id,
            event_time=event_time,
            processed_at=processed_at or datetime.now(UTC),
        )


class _PromMetrics:
    """The client's Prometheus counters (process registry, so ``/metrics`` shows them)."""

    def __init__(self) -> None:
        self.requests = prom.counter(
            "crmpilot_llm_requests",
            "LLM task runs on one provider of the chain; outcome = ok, cache_hit or the error type",
            ("task", "model", "outcome"),
        )
        self.tokens = prom.counter(
            "crmpilot_llm_tokens",
            "Tokens billed by the model, failed attempts included; type = input or output",
            ("task", "model", "type"),
        )
        self.cost = prom.counter(
            "crmpilot_llm_cost_usd", "Cost of model calls in USD from the price table", ("task", "model")
        )
        self.cache_hits = prom.counter(
            "crmpilot_llm_cache_hits", "Response cache lookups answered from the cache", ("task",)
        )
        self.cache_misses = prom.counter(
            "crmpilot_llm_cache_misses", "Response cache lookups that went to the model", ("task",)
        )
        self.retries = prom.counter(
            "crmpilot_llm_retries", "LLM attempts retried after a retryable error", ("task", "model")
        )

    def record(self, task: str, model: str, outcome: str, usage: Usage) -> None:
        self.requests.labels(task, model, outcome).inc()
        if usage.tokens_in:
            self.tokens.labels(task, model, "input").inc(usage.tokens_in)
        if usage.tokens_out:
            self.tokens.labels(task, model, "output").inc(usage.tokens_out)
        if usage.cost_usd:
            self.cost.labels(task, model).inc(float(usage.cost_usd))


def _model_of(provider: Provider) -> str:
    return str(getattr(provider, "model", None) or provider.name)


class _SingleFlight:
    """One in-flight call per cache key inside the process; the others wait and hit the cache."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, key: str) -> _Held:
        lock, n = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, n + 1)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: forget this waiter, then re-raise
            self._forget(key, lock)
            raise
        return _Held(self, key, lock)

    def _release(self, key: str, lock: asyncio.Lock) -> None:
        lock.release()
        self._forget(key, lock)

    def _forget(self, key: str, lock: asyncio.Lock) -> None:
        _, n = self._locks[key]
        if n <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, n - 1)


class _Held:
    def __init__(self, flight: _SingleFlight, key: str, lock: asyncio.Lock) -> None:
        self._flight, self._key, self._lock = flight, key, lock

    def release(self) -> None:
        self._flight._release(self._key, self._lock)


class LLMClient:
    """Runs tasks on a chain of providers with retries, limits, cache, cost, redaction and tracing.

    ``providers``: the default chain (first is primary). ``task_providers``: a
    chain per task name, for per-task models. One client per process: its
    :class:`Limiter` is what "shared by all tasks" means.
    """

    def __init__(
        self,
        providers: Provider | Sequence[Provider],
        *,
        task_providers: Mapping[str, Sequence[Provider]] | None = None,
        cache: ResponseCache | None = None,
        cache_ttl: float | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        redactor: Redactor | None = None,
        redact: bool = True,
        prices: PriceTable = DEFAULT_PRICES,
        breaker_failures: int = 5,
        breaker_reset: float = 30.0,
        max_output_tokens: int = 1024,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        calibrations: Calibrations | None = None,
    ) -> None:
        chain = [providers] if not isinstance(providers, Sequence) else list(providers)
        if not chain:
            raise ValueError("at least one provider is needed")
        self.providers: list[Provider] = chain
        self.task_providers = {k: list(v) for k, v in (task_providers or {}).items()}
        self.cache = cache
        self.cache_ttl = cache_ttl
        self.limiter = limiter or Limiter()
        self.retry = retry or RetryPolicy()
        self.redactor = (redactor or Redactor()) if redact else None
        self.prices = prices
        self.max_output_tokens = max_output_tokens
        self.calibrations = calibrations or Calibrations()
        self._breaker_failures = breaker_failures
        self._breaker_reset = breaker_reset
        self._breakers: dict[tuple[str, str, str | None, int | None], CircuitBreaker] = {}
        self._flight = _SingleFlight()
        self._tracer = sc.get_tracer(tracer_provider)
        self._metrics = sc.GenAIMetrics(sc.get_meter(meter_provider))
        self._prom = _PromMetrics()

    # --- public ---------------------------------------------------------------------

    async def run(
        self,
        spec: TaskSpec[OutT],
        payload: Mapping[str, Any],
        *,
        bypass_cache: bool = False,
        deadline: float | None = None,
    ) -> TaskRun[OutT]:
        """Run ``spec`` on ``payload``; ``deadline`` (seconds) overrides the policy's total deadline.

        Raises an :class:`~crmpilot.llm.errors.LLMError` carrying the usage and
        attempts spent: Retryable ones once retries and fallbacks are exhausted,
        the others (auth, bad request, invalid output) at once.
        """
        started = time.monotonic()
        ends_at = started + (deadline if deadline is not None else self.retry.deadline)
        redaction = self.redactor.redact(dict(payload)) if self.redactor else Redaction(dict(payload))
        red_payload: dict[str, Any] = redaction.payload
        ihash = input_hash(red_payload)
        chain = self.task_providers.get(spec.name, self.providers)
        last: LLMError | None = None
        spent = Usage()
        for i, provider in enumerate(chain):
            has_next = i + 1 < len(chain)
            breaker = self._breaker(provider)
            if has_next and breaker.state == "open":
                log.warning("circuit open for %s/%s; falling back", provider.name, _model_of(provider))
                continue
            try:
                run = await self._run_on(
                    provider, spec, red_payload, ihash, redaction, started, ends_at, has_next, bypass_cache, spent
                )
            except LLMError as exc:
                spent = exc.usage
                if has_next and isinstance(exc, Retryable) and not isinstance(exc, LLMDeadlineExceeded):
                    log.warning("%s on %s/%s; falling back", exc.error_type, provider.name, _model_of(provider))
                    last = exc
                    continue
                raise
            return run
        assert last is not None
        raise last

    async def aclose(self) -> None:
        """Close providers and cache (connection pools)."""
        seen: set[int] = set()
        for p in [*self.providers, *(p for chain in self.task_providers.values() for p in chain)]:
            if id(p) not in seen and hasattr(p, "aclose"):
                seen.add(id(p))
                await p.aclose()
        if self.cache is not None:
            await self.cache.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def breaker_for(self, provider: Provider) -> CircuitBreaker:
        """The circuit breaker of ``provider``'s endpoint and model."""
        return self._breaker(provider)

    # --- one provider -----------------------------------------------------------------

    def _breaker(self, provider: Provider) -> CircuitBreaker:
        key = (
            provider.name,
            _model_of(provider),
            getattr(provider, "server_address", None),
            getattr(provider, "server_port", None),
        )
        b = self._breakers.get(key)
        if b is None:
            b = self._breakers[key] = CircuitBreaker(
                f"{provider.name}/{_model_of(provider)}",
                failure_threshold=self._breaker_failures,
                reset_timeout=self._breaker_reset,
            )
        return b

    def _base_attributes(self, provider: Provider) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: provider.name,
            sc.GEN_AI_REQUEST_MODEL: _model_of(provider),
        }
        if (addr := getattr(provider, "server_address", None)) is not None:
            attrs[sc.SERVER_ADDRESS] = addr
        if (port := getattr(provider, "server_port", None)) is not None:
            attrs[sc.SERVER_PORT] = port
        return attrs

    async def _run_on(
        self,
        provider: Provider,
        spec: TaskSpec[OutT],
        payload: dict[str, Any],
        ihash: str,
        redaction: Redaction,
        started: float,
        ends_at: float,
        has_next: bool,
        bypass_cache: bool,
        spent: Usage,
    ) -> TaskRun[OutT]:
        model = _model_of(provider)
        attrs = self._base_attributes(provider)
        with self._tracer.start_as_current_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes=attrs,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute("crmpilot.llm.task", spec.name)
            span.set_attribute("crmpilot.llm.prompt.id", spec.prompt.id)
            span.set_attribute("crmpilot.llm.prompt.version", spec.prompt.version)
            span.set_attribute("crmpilot.llm.input_hash", ihash)
            if redaction.counts:
                span.set_attribute("crmpilot.privacy.redacted", sum(redaction.counts.values()))
            trace_id = f"{span.get_span_context().trace_id:032x}" if span.get_span_context().is_valid else None
            version = getattr(provider, "method_version", None)  # the local provider's code decides its answers
            method = version(spec) if callable(version) else ""
            key = CacheKey(provider.name, model, spec.name, spec.prompt.hash, ihash, method)
            use_cache = self.cache is not None and not bypass_cache
            held = await self._flight(key.digest) if use_cache else None
            try:
                if use_cache:
                    hit = await self._cache_get(key, spec, attrs)
                    if hit is not None:
                        output, answer = hit
                        span.set_attribute("crmpilot.llm.cache_hit", True)
                        span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, answer.model_version or answer.model)
                        if answer.response_id:
                            span.set_attribute(sc.GEN_AI_RESPONSE_ID, answer.response_id)
                        latency = (time.monotonic() - started) * 1000
                        self._prom.record(spec.name, model, "cache_hit", Usage())
                        return TaskRun(
                            output=self._calibrated(
                                spec, self._restore(spec, output, redaction), model, answer.confidence_source
                            ),
                            provider=provider.name,
                            model=model,
                            model_version=answer.model_version,
                            prompt_id=spec.prompt.id,
                            prompt_version=spec.prompt.version,
                            prompt_hash=spec.prompt.hash,
                            input_hash=ihash,
                            tokens_in=0,
                            tokens_out=0,
                            cost_usd=Decimal(0),
                            latency_ms=latency,
                            attempts=1,
                            cache_hit=True,
                            trace_id=trace_id,
                            response_id=answer.response_id,
                            redacted=dict(redaction.counts),
                            confidence_source=answer.confidence_source,
                        )
                span.set_attribute("crmpilot.llm.cache_hit", False)
                t0 = time.monotonic()
                try:
                    completion, usage = await self._call_with_retries(provider, spec, payload, ends_at, has_next, span)
                except LLMError as exc:
                    mine = self._costed(provider, model, exc.usage)
                    self._record_failure(span, attrs, exc, mine, time.monotonic() - t0)
                    self._prom.record(spec.name, model, exc.error_type, mine)
                    exc.usage = spent + mine
                    exc.attempts = exc.usage.requests
                    raise
                answer = CachedAnswer(
                    completion.output.model_dump(mode="json"),
                    model=completion.model,
                    model_version=completion.model_version,
                    response_id=completion.response_id,
                    tokens_in=usage.tokens_in,
                    tokens_out=usage.tokens_out,
                    cost_usd=usage.cost_usd,
                    confidence_source=completion.confidence_source,
                )
                if use_cache:
                    await self._cache_put(key, answer)
                self._record_success(span, attrs, completion, usage, time.monotonic() - t0)
                self._prom.record(spec.name, model, "ok", usage)
                total = spent + usage  # earlier providers of the chain count too
                return TaskRun(
                    output=self._calibrated(
                        spec, self._restore(spec, completion.output, redaction), model, completion.confidence_source
                    ),
                    provider=provider.name,
                    model=model,
                    model_version=completion.model_version,
                    prompt_id=spec.prompt.id,
                    prompt_version=spec.prompt.version,
                    prompt_hash=spec.prompt.hash,
                    input_hash=ihash,
                    tokens_in=total.tokens_in,
                    tokens_out=total.tokens_out,
                    cost_usd=total.cost_usd,
                    latency_ms=(time.monotonic() - started) * 1000,
                    attempts=total.requests,
                    cache_hit=False,
                    trace_id=trace_id,
                    response_id=completion.response_id,
                    usage_estimated=completion.usage_estimated,
                    redacted=dict(redaction.counts),
                    tokens_cached=_tokens_cached(completion),
                    confidence_source=completion.confidence_source,
                )
            finally:
                if held is not None:
                    held.release()

    def _costed(self, provider: Provider, model: str, usage: Usage) -> Usage:
        cost = self.prices.cost(provider.name, model, usage.tokens_in, usage.tokens_out)
        return Usage(usage.tokens_in, usage.tokens_out, usage.requests, cost)

    async def _call_with_retries(
        self,
        provider: Provider,
        spec: TaskSpec[OutT],
        payload: dict[str, Any],
        ends_at: float,
        has_next: bool,
        span: Span,
    ) -> tuple[Completion[OutT], Usage]:
        """Attempts under the retry policy; the usage returned (or put on the error) covers all of them."""
        model = _model_of(provider)
        breaker = self._breaker(provider)
        est = (
            estimate_tokens(spec.prompt.system, model)
            + estimate_tokens(spec.prompt.render_user(payload), model)
            + self.max_output_tokens
        )
        spent: list[Usage] = [Usage()]

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, Retryable) or isinstance(exc, LLMDeadlineExceeded):
                return False
            if isinstance(exc, LLMCircuitOpen) and has_next:
                return False  # the next provider of the chain takes over
            retry_after = getattr(exc, "retry_after", None)
            return retry_after is None or time.monotonic() + float(retry_after) < ends_at

        async def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            etype = exc.error_type if isinstance(exc, LLMError) else type(exc).__name__
            span.add_event(
                "gen_ai.client.retry",
                {
                    "crmpilot.llm.attempt": state.attempt_number,
                    sc.ERROR_TYPE: etype,
                    "crmpilot.llm.retry.wait_s": float(wait),
                },
            )
            self._metrics.retries.add(1, {**self._base_attributes(provider), sc.ERROR_TYPE: etype})
            self._prom.retries.labels(spec.name, model).inc()
            log.warning(
                "LLM %s/%s attempt %d failed with %s; retrying in %.2fs",
                provider.name,
                model,
                state.attempt_number,
                etype,
                wait,
            )

        retrying = self.retry.retrying(
            should_retry=should_retry, before_sleep=before_sleep, deadline=max(0.0, ends_at - time.monotonic())
        )
        try:
            async for attempt in retrying:
                with attempt:
                    completion = await self._attempt(provider, breaker, spec, payload, est, ends_at, spent)
        except LLMError as exc:
            exc.usage = spent[0]
            exc.attempts = spent[0].requests
            raise
        total = spent[0] + Usage(completion.tokens_in, completion.tokens_out, max(1, completion.requests))
        return completion, self._costed(provider, model, total)

    async def _attempt(
        self,
        provider: Provider,
        breaker: CircuitBreaker,
        spec: TaskSpec[OutT],
        payload: dict[str, Any],
        est: int,
        ends_at: float,
        spent: list[Usage],
    ) -> Completion[OutT]:
        """One attempt: breaker, limits, timeout, the provider call; failed usage goes into ``spent``."""
        breaker.before_call()
        remaining = ends_at - time.monotonic()
        if remaining <= 0:
            breaker.release()
            raise LLMDeadlineExceeded("the call's deadline passed before an attempt could start")
        timeout = remaining if self.retry.attempt_timeout is None else min(remaining, self.retry.attempt_timeout)
        try:
            async with self.limiter.reserve(est, deadline=ends_at) as reservation:
                try:
                    async with asyncio.timeout(timeout):
                        completion = await provider.complete(spec, payload)
                except TimeoutError:
                    reservation.settle(tokens=0)
                    spent[0] = spent[0] + Usage(requests=1)
                    raise LLMTimeout(
                        f"no answer within {timeout:.1f}s", provider=provider.name, model=_model_of(provider)
                    ) from None
                except LLMError as exc:
                    failed = Usage(exc.usage.tokens_in, exc.usage.tokens_out, max(1, exc.usage.requests))
                    spent[0] = spent[0] + failed
                    reservation.settle(tokens=failed.tokens_in + failed.tokens_out, requests=failed.requests)
                    raise
                reservation.settle(tokens=completion.tokens_in + completion.tokens_out, requests=completion.requests)
        except LLMUnavailable as exc:
            if isinstance(exc, LLMCircuitOpen | LLMDeadlineExceeded):
                breaker.release()
            else:
                breaker.record_failure()
            raise
        except LLMError:
            breaker.release()
            raise
        breaker.record_success()
        return completion

    # --- cache, restore, telemetry ----------------------------------------------------

    async def _cache_get(
        self, key: CacheKey, spec: TaskSpec[OutT], attrs: Mapping[str, Any]
    ) -> tuple[OutT, CachedAnswer] | None:
        assert self.cache is not None
        try:
            answer = await self.cache.get(key)
        except LLMCacheError as exc:
            log.warning("response cache unavailable (%s); calling the model", exc)
            answer = None
        output = None
        if answer is not None:
            try:
                output = spec.output_model.model_validate(answer.output)
            except ValidationError:
                log.warning("cached answer for task %s no longer validates; calling the model", spec.name)
        self._metrics.cache_lookups.add(1, {**attrs, "crmpilot.llm.cache.hit": output is not None})
        (self._prom.cache_hits if output is not None else self._prom.cache_misses).labels(spec.name).inc()
        return (output, answer) if output is not None and answer is not None else None

    async def _cache_put(self, key: CacheKey, answer: CachedAnswer) -> None:
        assert self.cache is not None
        try:
            await self.cache.put(key, answer, ttl=self.cache_ttl)
        except LLMCacheError as exc:
            log.warning("response cache unavailable (%s); answer not stored", exc)

    def _calibrated(self, spec: TaskSpec[OutT], output: OutT, model: str, source: str) -> OutT:
        """``output`` with its closed fields' confidences calibrated (``CRMPILOT_LLM_CALIBRATION_FILE``)."""
        return self.calibrations.apply(
            output,
            model=model,
            task=spec.name,
            prompt_version=spec.prompt.version,
            source=source,
            paths={path: f for path, f in spec.logprob_confidence},
        )

    @staticmethod
    def _restore(spec: TaskSpec[OutT], output: OutT, redaction: Redaction) -> OutT:
        """``output`` with the placeholders of every ``restore_fields`` field put back, nested items and lists too."""
        if not spec.restore_fields or not redaction.originals:
            return output
        data = output.model_dump()
        for f in spec.restore_fields:
            if f in data:
                data[f] = _restore_deep(data[f], redaction)
        try:
            return type(output).model_validate(data)
        except ValidationError:
            # restored text outgrew a field's bound: kept with its placeholders, which the
            # grounding check then reports (never auto-applied) rather than failing the record
            log.warning(
                "restoring PII placeholders in %s would exceed an output's bounds; placeholders kept", spec.name
            )
            return output

    def _record_success(
        self, span: Span, attrs: Mapping[str, Any], c: Completion[Any], usage: Usage, duration: float
    ) -> None:
        response_model = c.model_version or c.model
        span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, response_model)
        if c.response_id:
            span.set_attribute(sc.GEN_AI_RESPONSE_ID, c.response_id)
        if c.finish_reasons:
            span.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, list(c.finish_reasons))
        span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, usage.tokens_in)
        span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, usage.tokens_out)
        span.set_attribute("crmpilot.llm.attempts", usage.requests)
        span.set_attribute("crmpilot.llm.cost_usd", float(usage.cost_usd))
        if cached := _tokens_cached(c):
            span.set_attribute(_GEN_AI_USAGE_CACHE_READ, cached)
        self._metrics.record_call(
            {**attrs, sc.GEN_AI_RESPONSE_MODEL: response_model},
            duration_s=duration,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            cost_usd=float(usage.cost_usd),
        )

    def _record_failure(
        self, span: Span, attrs: Mapping[str, Any], exc: LLMError, usage: Usage, duration: float
    ) -> None:
        span.set_attribute(sc.ERROR_TYPE, exc.error_type)
        span.set_attribute("crmpilot.llm.attempts", usage.requests)
        if usage.tokens_in or usage.tokens_out:
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, usage.tokens_in)
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, usage.tokens_out)
            span.set_attribute("crmpilot.llm.cost_usd", float(usage.cost_usd))
        span.set_status(Status(StatusCode.ERROR, exc.error_type))
        self._metrics.record_call(
            {**attrs, sc.ERROR_TYPE: exc.error_type},
            duration_s=duration,
            tokens_in=usage.tokens_in or None,
            tokens_out=usage.tokens_out or None,
            cost_usd=float(usage.cost_usd),
        )


_GEN_AI_USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"


def _tokens_cached(completion: Completion[Any]) -> int:
    """The prompt tokens a provider reports as read from the endpoint's prompt cache (0 when it says nothing)."""
    value = completion.extra.get("tokens_cached") if completion.extra else None
    return value if isinstance(value, int) and value > 0 else 0


def _restore_deep(value: Any, redaction: Redaction) -> Any:
    """``value`` with the placeholders of every string inside it (lists, dicts) put back."""
    if isinstance(value, str):
        return redaction.restore(value)
    if isinstance(value, list | tuple):
        return [_restore_deep(v, redaction) for v in value]
    if isinstance(value, dict):
        return {k: _restore_deep(v, redaction) for k, v in value.items()}
    return value
