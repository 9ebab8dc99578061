"""One local provider (one model, one batcher) shared by the whole session."""

from __future__ import annotations

import pytest

from crmpilot.llm.local import LocalProvider


@pytest.fixture(scope="session")
def provider() -> LocalProvider:
    return LocalProvider()
