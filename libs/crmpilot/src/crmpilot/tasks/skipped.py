"""Provenance of a result that asked no model: an input with nothing to read.

Every AI service answers an empty or non-text input with a typed skip result;
its provenance still names the prompt it would have used and the hash of the
(redacted) input, so the warehouse row says exactly what was skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crmpilot.events.models import Provenance
from crmpilot.llm import LLMClient, input_hash
from crmpilot.llm.base import TaskSpec
from crmpilot.streaming.tracing import current_trace_id

__all__ = ["skipped_provenance"]


def skipped_provenance(llm: LLMClient, spec: TaskSpec[Any], payload: Mapping[str, Any], source: Mapping[str, Any]) -> Provenance:
    """``source``: the source topic, partition, offset, event id and event time of the result."""
    seen = llm.redactor.redact(dict(payload)).payload if llm.redactor else dict(payload)
    return Provenance.without_model_call(
        prompt_id=spec.prompt.id,
        prompt_version=spec.prompt.version,
        prompt_hash=spec.prompt.hash,
        input_hash=input_hash(seen),
        trace_id=current_trace_id(),
        processed_at=datetime.now(UTC),
        **source,
    )
