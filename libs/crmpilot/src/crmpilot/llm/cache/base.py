"""The response-cache port: a paid answer is stored under what determined it, and reused.

Key: provider, model, task, prompt hash and the hash of the *redacted* input,
so a redelivered event (or an identical ticket) does not pay for a second call;
for the local provider also the version of its methods' code, so an answer of
earlier rules (an older summarizer) is never served by a newer build.
Values are the validated output as JSON plus what the original call cost.
Implementations: :class:`~crmpilot.llm.cache.memory.MemoryCache` (in-process LRU)
and :class:`~crmpilot.llm.cache.postgres.PostgresCache` (shared, durable).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from crmpilot.llm.base import ConfidenceSource

__all__ = ["CacheKey", "CachedAnswer", "ResponseCache"]


@dataclass(frozen=True, slots=True)
class CacheKey:
    provider: str
    model: str
    task: str
    prompt_hash: str
    input_hash: str
    method: str = ""
    """What else decides the provider's answers (the local methods' code version); empty for a model endpoint."""

    @property
    def digest(self) -> str:
        """The primary key: a hash of all parts."""
        parts = (self.provider, self.model, self.task, self.prompt_hash, self.input_hash)
        raw = "\x1f".join((*parts, self.method) if self.method else parts)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    output: dict[str, Any]
    model: str
    model_version: str | None = None
    response_id: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: Decimal = Decimal(0)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    confidence_source: ConfidenceSource = "self_report"


class ResponseCache(Protocol):
    """Stores answers by key. ``ttl`` in seconds; ``None`` keeps them until evicted."""

    async def get(self, key: CacheKey) -> CachedAnswer | None: ...

    async def put(self, key: CacheKey, answer: CachedAnswer, *, ttl: float | None = None) -> None: ...

    async def aclose(self) -> None: ...
