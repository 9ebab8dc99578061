"""crmpilot.llm: the shared LLM client (providers, retries, limits, cache, cost, redaction, tracing).

```python
client = build_llm_client(LLMSettings())
run = await client.run(CLASSIFY_TICKET, {"subject": ..., "description": ...})
run.output, run.provenance(source_topic=..., ...)
```

The embedded local provider lives in ``crmpilot.llm.local`` and is imported
only when selected (it loads a model); test doubles in ``crmpilot.llm.testing``.
``OpenAIProvider`` is imported on first access (the ``openai`` SDK takes about a
second to import, which services on the local provider need not pay).
"""

from typing import TYPE_CHECKING, Any

from crmpilot.llm.base import Completion, Prompt, Provider, TaskSpec, Usage, input_hash
from crmpilot.llm.breaker import CircuitBreaker
from crmpilot.llm.cache import CachedAnswer, CacheKey, MemoryCache, PostgresCache, ResponseCache
from crmpilot.llm.client import LLMClient, TaskRun
from crmpilot.llm.errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMBudgetExceeded,
    LLMCacheError,
    LLMCircuitOpen,
    LLMConfigError,
    LLMDeadlineExceeded,
    LLMError,
    LLMInvalidOutput,
    LLMQuotaExceeded,
    LLMRateLimited,
    LLMRefused,
    LLMTimeout,
    LLMUnavailable,
)
from crmpilot.llm.factory import build_cache, build_llm_client
from crmpilot.llm.limits import Limiter
from crmpilot.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from crmpilot.llm.retry import RetryPolicy
from crmpilot.llm.settings import LLMSettings

__all__ = [
    # model interface
    "Prompt",
    "TaskSpec",
    "Completion",
    "Provider",
    "Usage",
    "input_hash",
    # client
    "LLMClient",
    "TaskRun",
    "LLMSettings",
    "build_llm_client",
    "build_cache",
    "OpenAIProvider",
    "RetryPolicy",
    "Limiter",
    "CircuitBreaker",
    "Price",
    "PriceTable",
    "DEFAULT_PRICES",
    # cache
    "ResponseCache",
    "CacheKey",
    "CachedAnswer",
    "MemoryCache",
    "PostgresCache",
    # errors
    "LLMError",
    "LLMRateLimited",
    "LLMUnavailable",
    "LLMTimeout",
    "LLMCircuitOpen",
    "LLMDeadlineExceeded",
    "LLMAuthError",
    "LLMConfigError",
    "LLMQuotaExceeded",
    "LLMBadRequest",
    "LLMBudgetExceeded",
    "LLMInvalidOutput",
    "LLMRefused",
    "LLMCacheError",
]

if TYPE_CHECKING:
    from crmpilot.llm.openai_provider import OpenAIProvider


def __getattr__(name: str) -> Any:
    if name == "OpenAIProvider":
        from crmpilot.llm.openai_provider import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
