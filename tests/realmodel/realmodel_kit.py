"""Pieces of the real-model tier: what the tests know of the server, and a recorder of the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from crmpilot.llm import RetryPolicy
from crmpilot.llm.openai_provider import OpenAIProvider


@dataclass(frozen=True)
class LlamaServer:
    """What the tests know of the running server."""

    base_url: str
    """``http://127.0.0.1:<port>/v1``"""
    model: str
    """the model id it serves (its ``--alias``)"""
    slots: int
    n_ctx_slot: int
    """context tokens of one slot (``-c`` is the total over the slots)"""
    props: dict[str, Any]

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


@dataclass
class Wire:
    """What went over the wire: every request body and response (status, JSON), and the peak in flight."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    responses: list[tuple[int, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]


def recording_http_client(wire: Wire, timeout: float) -> httpx.AsyncClient:
    async def on_request(request: httpx.Request) -> None:
        wire.in_flight += 1
        wire.max_in_flight = max(wire.max_in_flight, wire.in_flight)
        try:
            wire.requests.append(json.loads(request.content or b"{}"))
        except ValueError:
            wire.requests.append({})

    async def on_response(response: httpx.Response) -> None:
        wire.in_flight -= 1
        await response.aread()
        try:
            wire.responses.append((response.status_code, response.json()))
        except ValueError:
            wire.responses.append((response.status_code, None))

    return httpx.AsyncClient(timeout=timeout, event_hooks={"request": [on_request], "response": [on_response]})


REALMODEL_RETRY = RetryPolicy(max_attempts=3, initial_wait=0.2, max_wait=2.0, jitter=0.1, deadline=240.0)


def make_provider(llama: LlamaServer, wire: Wire, *, timeout: float = 120.0, **kw: Any) -> OpenAIProvider:
    kw.setdefault("max_output_tokens", 256)
    kw.setdefault("temperature", 0.0)
    sdk = openai.AsyncOpenAI(
        api_key="sk-local-llama",
        base_url=llama.base_url,
        timeout=timeout,
        max_retries=0,
        http_client=recording_http_client(wire, timeout),  # type: ignore[arg-type]  # openai hints httpx2.AsyncClient, accepts httpx.AsyncClient too
    )
    return OpenAIProvider(model=llama.model, client=sdk, provider_name="llama.cpp", **kw)
