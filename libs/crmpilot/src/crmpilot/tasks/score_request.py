"""The built-in ``score_request`` enrichment's code: what its spec file (``specs/score_request.yaml``) cannot declare.

- hook ``score_band``: ``band`` from ``score`` (``hot`` from 70, ``warm`` from 40, else ``cold``), so the two never
  disagree;
- hook ``score_reasons``: the factors and risk flags as the one line the Lead's ``AI_Score_Reasons__c`` shows
  (``+ budget stated; - free email domain; risk: free_mail_domain``);
- local method ``score_request``: points from the request's fields and its text's cues on the bundled encoder
  (:mod:`crmpilot.tasks.local.score`).

The rules both use (``band_for``, ``field_evidence``, ``reasons_line``) are in :mod:`crmpilot.tasks.scoring`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmpilot.enrichments.hooks import hook, local_method
from crmpilot.llm.base import LocalAnswer, TaskSpec

from .scoring import band_for, reasons_line


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
