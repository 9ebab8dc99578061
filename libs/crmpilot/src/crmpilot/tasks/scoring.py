"""The request score's rules that both its hooks and its local method use: the band of a score, how a factor quotes a
field, the one-line reasons of the Lead."""

from __future__ import annotations

import json
from typing import Any, Literal

__all__ = ["HOT_FROM", "REASONS_MAX", "WARM_FROM", "Band", "band_for", "field_evidence", "reasons_line"]

Band = Literal["cold", "warm", "hot"]
HOT_FROM = 70
WARM_FROM = 40
REASONS_MAX = 1000


def band_for(score: int) -> Band:
    """``hot`` from 70, ``warm`` from 40, else ``cold``."""
    return "hot" if score >= HOT_FROM else "warm" if score >= WARM_FROM else "cold"


def field_evidence(name: str, value: object) -> str:
    """How a factor quotes a structured field, as the prompt shows it: ``"employees: 250"``, ``"amount: "``."""
    shown = value if isinstance(value, str) else "" if value is None else json.dumps(value, default=str)
    return f"{name}: {shown}"


def reasons_line(factors: Any, risk_flags: Any) -> str:
    """``+ name`` per factor that raised the score, ``- name`` per one that lowered it, then ``risk: flag``."""
    reasons = [f"{'+' if f['direction'] == 'up' else '-'} {f['name']}" for f in factors or ()]
    reasons += [f"risk: {flag}" for flag in risk_flags or ()]
    return "; ".join(reasons)[:REASONS_MAX]
