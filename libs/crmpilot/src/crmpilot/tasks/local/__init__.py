"""How the embedded model answers the built-in tasks still in code (each task's ``TaskSpec.local``).

The local provider (:mod:`crmpilot.llm.local`) knows no task: it runs a declared
task with its generic answerer, and a built-in task with the method the task
brings. These modules are those methods: embedding similarity, anchor phrasings
and lexical cues on the bundled encoder, imported only when the local provider runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmpilot.llm.base import LocalAnswer, TaskSpec

__all__ = ["classify_ticket", "summarize_email"]


async def classify_ticket(provider: Any, spec: TaskSpec[Any], payload: Mapping[str, Any]) -> LocalAnswer:
    """A category head for the spec's taxonomy (trained or zero-shot) plus rules over cues."""
    from .classify import classify_ticket as classify

    head = await provider.head_for(spec.output_model.taxonomy)
    output, tokens = await classify(payload, output_model=spec.output_model, head=head, batcher=provider.batcher)
    return LocalAnswer(output, tokens, {"head": head.id})


async def summarize_email(provider: Any, spec: TaskSpec[Any], payload: Mapping[str, Any]) -> LocalAnswer:
    """An extractive summary of the email's new text, action items and entities quoted verbatim."""
    from .summarize import summarize_email as summarize

    output, tokens = await summarize(payload, batcher=provider.batcher)
    return LocalAnswer(output, tokens)
