"""Shared pieces of the handler tests (unit and integration): envelopes in, decoded result envelopes out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from crmpilot.events import Envelope, decode
from crmpilot.llm import LLMClient, RetryPolicy
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.testing import OpenAITestServer
from crmpilot.streaming import MessageContext, Output

EVENT_TIME = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.05, jitter=0.01, deadline=15.0)

Handler = Callable[[Envelope[Any], MessageContext], Awaitable[Sequence[Output]]]


def envelope(event_type: str, data: BaseModel, *, subject: str, event_id: str = "evt-1") -> Envelope[Any]:
    return Envelope[Any](
        id=event_id, source="crm://test", type=event_type, schemaversion=1, subject=subject, time=EVENT_TIME, data=data
    )


def context(topic: str, offset: int = 7) -> MessageContext:
    return MessageContext(topic, 1, offset, b"key", (), EVENT_TIME, "test-group")


def handle(handler: Handler, event: Envelope[Any], topic: str) -> list[tuple[Output, Envelope[Any]]]:
    """Run the handler on one event; each output with its value decoded strictly (as every consumer decodes it)."""

    async def run() -> Sequence[Output]:
        return await handler(event, context(topic))

    outputs = asyncio.run(run())
    return [(out, decode(out.value)) for out in outputs]


def only_result(handler: Handler, event: Envelope[Any], topic: str) -> Any:
    [(_, result)] = handle(handler, event, topic)
    return result.data


def openai_client(server: OpenAITestServer) -> LLMClient:
    """The client a service builds for an OpenAI-compatible endpoint, pointed at the test server."""
    return LLMClient(
        OpenAIProvider(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", timeout=5.0), retry=FAST_RETRY
    )
