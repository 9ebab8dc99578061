"""A shared response cache never serves an answer of other local rules: the local methods' code is in the key."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

from crmpilot.llm import LLMClient, input_hash
from crmpilot.llm.cache.base import CachedAnswer, CacheKey
from crmpilot.llm.cache.memory import MemoryCache
from crmpilot.llm.local import LocalProvider
from crmpilot.tasks import SUMMARIZE_EMAIL

EMAIL = {
    "subject": "Invoice 4471",
    "body": "Hi Ann,\n\nThe invoice 4471 was charged twice. Please refund the second charge by Friday.\n\nThanks, Bob",
    "max_words": 60,
}


def test_an_answer_of_earlier_local_rules_is_not_served(provider: LocalProvider) -> None:
    version = provider.method_version(SUMMARIZE_EMAIL)
    assert version and version == provider.method_version(SUMMARIZE_EMAIL)
    # the summarizer's own code is part of it: a change to crmpilot/tasks/local is a new version
    assert version != provider.method_version(replace(SUMMARIZE_EMAIL, local=None))

    async def run() -> tuple[bool, bool, str]:
        cache = MemoryCache(100)
        client = LLMClient(provider, cache=cache, redact=False)
        stale = CacheKey(
            "local", provider.model, SUMMARIZE_EMAIL.name, SUMMARIZE_EMAIL.prompt.hash, input_hash(EMAIL), "older-rules"
        )
        await cache.put(stale, CachedAnswer({"summary": "An older build's summary."}, provider.model))
        first = await client.run(SUMMARIZE_EMAIL, EMAIL)
        again = await client.run(SUMMARIZE_EMAIL, EMAIL)
        return first.cache_hit, again.cache_hit, first.output.summary

    first_hit, second_hit, summary = asyncio.run(run())
    assert not first_hit and second_hit
    assert "charged twice" in summary and "older build" not in summary


def test_the_key_of_a_model_endpoint_is_unchanged() -> None:
    """Without a method version the digest is the one earlier builds stored (a shared cache stays warm)."""
    parts = ("openai", "gpt-4o-mini", "classify_ticket", "abc", "def")
    assert CacheKey(*parts).digest == hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    assert CacheKey(*parts).digest != CacheKey(*parts, "v2").digest
