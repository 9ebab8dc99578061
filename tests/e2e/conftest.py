"""Fixtures of the e2e tier (see e2e_stack.py), and the order its modules share the pipeline in."""

from __future__ import annotations

import pytest
from e2e_stack import pipeline

__all__ = ["pipeline"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The demo enriches every seeded record of the shared sandbox: it runs after the modules that need them
    untouched."""
    items.sort(key=lambda item: item.path.name == "test_demo.py")
