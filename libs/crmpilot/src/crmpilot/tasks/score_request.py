"""The built-in ``score_request`` enrichment's code: what its spec file (``specs/score_request.yaml``) cannot declare.

- hook ``score_band``: ``band`` from ``score`` (``hot`` from 70, ``warm`` from 40, else ``cold``), so the two never
  disagree;
- hook ``score_reasons``: the factors and risk flags as the one line the Lead's ``AI_Score_Reasons__c`` shows
  (``+ budget stated; - free email domain; risk: free_mail_domain``);
- local method ``score_request``: points from the request's fields and its text's cues on the bundled encoder
  (:mod:`crmpilot.tasks.local.score`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from crmpilot.enrichments.hooks import hook, local_method
from crmpilot.llm.base import LocalAnswer, TaskSpec

__all__ = ["HOT_FROM", "WARM_FROM", "Band", "band_for", "field_evidence", "reasons_line"]

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


@hook("score_band")
def _band(outputs: dict[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    outputs["band"] = band_for(int(outputs["score"]))
    return outputs


@hook("score_reasons")
def _reasons(outputs: dict[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    outputs["reasons"] = reasons_line(outputs.get("factors"), outputs.get("risk_flags"))
    return outputs


@local_method("score_request")
async def _score_locally(provider: Any, task: TaskSpec[Any], payload: Mapping[str, Any]) -> LocalAnswer:
    """Points from the request's fields and its text's cues, each factor with its evidence."""
    from .local.score import score_request

    output, tokens = await score_request(payload, batcher=provider.batcher)
    return LocalAnswer(output, tokens)
