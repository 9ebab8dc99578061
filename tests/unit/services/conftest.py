"""Fixtures of the service handler tests: the local model (once per session) behind a real LLM client."""

from __future__ import annotations

import pytest

from crmpilot.llm import LLMClient
from crmpilot.llm.local import LocalProvider


@pytest.fixture(scope="session")
def local_provider() -> LocalProvider:
    return LocalProvider()


@pytest.fixture
def local_llm(local_provider: LocalProvider) -> LLMClient:
    return LLMClient(local_provider)
