"""The LLM client's error tree: what can go wrong with a model call, as types.

Every error carries ``usage`` (tokens, requests and dollars spent so far) and
``attempts`` (requests made to the model, re-asks included), so a failed call is
still costed. The runtime acts on the traits from :mod:`crmpilot.errors`:

```
CrmpilotError
└── LLMError
    ├── LLMRateLimited(Retryable)        429 (carries retry_after)
    ├── LLMUnavailable(Retryable)        5xx, 408/409, connection errors
    │   ├── LLMTimeout                   per-attempt timeout
    │   ├── LLMCircuitOpen               the endpoint's breaker is open
    │   └── LLMDeadlineExceeded          the call's total deadline passed
    ├── LLMAuthError(Fatal)              401/403
    ├── LLMConfigError(Fatal)            404 (unknown model or path), bad settings
    ├── LLMQuotaExceeded(Fatal)          429 insufficient_quota: billing, not a rate
    ├── LLMBadRequest(Permanent)         400/422: this input can never succeed
    │   └── LLMContextOverflow           the prompt does not fit the model's context window
    ├── LLMBudgetExceeded(Permanent)     the request alone exceeds the tokens-per-minute budget
    ├── LLMInvalidOutput                 the answer failed validation after the bounded re-ask
    ├── LLMRefused(Permanent)            the model refused or the content filter stopped it
    ├── LocalCodeFailed(Permanent)       a registered local rule or method raised on this input
    └── LLMCacheError                    the response cache failed (the client degrades to a miss)
```

Validation failures are never Retryable: a re-ask is the provider's business and
bounded; they are not retried as if they were 429s. The Permanent ones are this
record's final answer (the endpoint said this request can never succeed): the
runtime dead-letters the record at once. ``LLMInvalidOutput`` is not Permanent: an
endpoint that answers garbage for a while (a bad deployment, an overloaded
gateway) recovers, so the runtime retries the record with its backoff before it
dead-letters it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmpilot.errors import CrmpilotError, Fatal, Permanent, Retryable
from crmpilot.llm.base import Usage

__all__ = [
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
    "LLMContextOverflow",
    "LLMBudgetExceeded",
    "LLMInvalidOutput",
    "LLMRefused",
    "LocalCodeFailed",
    "LLMCacheError",
]


class LLMError(CrmpilotError):
    """Base of every LLM failure. ``code`` is a stable name for logs, metrics and DLQ headers."""

    code = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        usage: Usage | None = None,
        attempts: int = 0,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.usage = usage or Usage()
        self.attempts = attempts
        self.provider = provider
        self.model = model
        self.status_code = status_code

    @property
    def error_type(self) -> str:
        """The value of the ``error.type`` span attribute."""
        return type(self).__name__


class LLMRateLimited(LLMError, Retryable):
    """HTTP 429: slow down; ``retry_after`` seconds when the server said so."""

    code = "llm_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class LLMUnavailable(LLMError, Retryable):
    """The endpoint did not answer usefully (5xx, connection reset, overload)."""

    code = "llm_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class LLMTimeout(LLMUnavailable):
    """One attempt took longer than its timeout."""

    code = "llm_timeout"


class LLMCircuitOpen(LLMUnavailable):
    """The endpoint failed repeatedly; calls are refused until ``retry_after`` passes."""

    code = "llm_circuit_open"


class LLMDeadlineExceeded(LLMUnavailable):
    """The whole call (waits, retries, re-asks) ran out of its total deadline."""

    code = "llm_deadline_exceeded"


class LLMAuthError(LLMError, Fatal):
    """HTTP 401/403: the API key or organisation is wrong. No retry can fix it."""

    code = "llm_auth"


class LLMConfigError(LLMError, Fatal):
    """The configuration cannot work (unknown model, wrong base URL path)."""

    code = "llm_config"


class LLMQuotaExceeded(LLMError, Fatal):
    """HTTP 429 with ``insufficient_quota``: the account is out of credit, not rate limited."""

    code = "llm_quota_exceeded"


class LLMBadRequest(LLMError, Permanent):
    """HTTP 400/422: the endpoint rejects this request (e.g. context too long)."""

    code = "llm_bad_request"

    def __init__(self, message: str, *, param: str | None = None, api_code: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.param = param
        self.api_code = api_code


class LLMContextOverflow(LLMBadRequest):
    """The prompt is longer than the model's context window (llama.cpp: HTTP 400 ``exceed_context_size_error``;
    OpenAI: ``context_length_exceeded``; vLLM: "maximum context length").

    Never retried: the same input overflows again. ``n_prompt_tokens`` and ``n_ctx``
    are the server's counts when it gave them (llama.cpp does; ``n_ctx`` is one slot's).
    """

    code = "llm_context_overflow"

    def __init__(
        self, message: str, *, n_prompt_tokens: int | None = None, n_ctx: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.n_prompt_tokens = n_prompt_tokens
        self.n_ctx = n_ctx


class LLMBudgetExceeded(LLMError, Permanent):
    """The request alone needs more tokens than the tokens-per-minute budget holds."""

    code = "llm_budget_exceeded"


class LLMInvalidOutput(LLMError):
    """The answer did not validate against the task's output model, re-asks included.

    ``errors`` are pydantic's error dicts without the offending input values
    (they may quote customer text), so they are safe to log.
    """

    code = "llm_invalid_output"

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors)


class LLMRefused(LLMError, Permanent):
    """The model refused to answer, or the content filter cut the answer."""

    code = "llm_refused"


class LocalCodeFailed(LLMError, Permanent):
    """A registered local rule or local method (user code on the local provider) raised on this input: the same input
    fails the same way, so the record is dead-lettered at once, as a failing hook's is."""

    code = "local_code_failed"


class LLMCacheError(LLMError):
    """The response cache could not be read or written."""

    code = "llm_cache"
