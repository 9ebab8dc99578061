"""Human in the loop: whether a result is applied, suggested for review, or skipped.

The decision is a pure function of a confidence and two thresholds, so the CRM
writer and the warehouse, reading the same result event, see the same decision.
"""

from __future__ import annotations

from crmpilot.events.models import ReviewDecision

__all__ = ["DEFAULT_THRESHOLD_HIGH", "DEFAULT_THRESHOLD_LOW", "review_decision"]

DEFAULT_THRESHOLD_HIGH = 0.8
"""At or above: written to the CRM field as fact."""
DEFAULT_THRESHOLD_LOW = 0.5
"""At or above (and below high): written as a suggestion flagged for review."""


def review_decision(
    confidence: float,
    *,
    threshold_high: float = DEFAULT_THRESHOLD_HIGH,
    threshold_low: float = DEFAULT_THRESHOLD_LOW,
) -> ReviewDecision:
    """``auto_apply`` if ``confidence >= threshold_high``, ``suggest`` if ``>= threshold_low``, else ``skip``."""
    if not 0.0 <= threshold_low <= threshold_high <= 1.0:
        raise ValueError(f"need 0 <= threshold_low <= threshold_high <= 1, got {threshold_low}, {threshold_high}")
    if confidence >= threshold_high:
        return "auto_apply"
    if confidence >= threshold_low:
        return "suggest"
    return "skip"
