"""Fixtures of the e2e tier (see e2e_stack.py)."""

from e2e_stack import pipeline

__all__ = ["pipeline"]
