"""The benchmark's ticket workload, the same for every contender: case events in, classifications out.

:func:`case_events` makes the input (``crm.case.created`` envelopes spread over
many case ids); :func:`answer` is what the OpenAI-protocol test server replies
(a valid classification); :class:`Workload` is what each contender process
runs per event: the ``classify_ticket`` task through the shared LLM client and
the real ``openai`` SDK against that server (cache off, at most C requests at
once by the client's limiter, PII redaction on as in the services), then a
small JSON result naming its source event, keyed by case id. It also measures
how busy the contender kept the endpoint's C slots, which tells a consumer
that does not feed the endpoint apart from a client that is slow to call it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from crmpilot.events import CaseEvent, Envelope
from crmpilot.llm import Completion, Limiter, LLMClient, RetryPolicy, TaskSpec
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.testing.server import ChatRequest, Reply
from crmpilot.tasks import CLASSIFY_TICKET, ticket_payload

__all__ = ["Workload", "answer", "case_events"]

OutT = TypeVar("OutT", bound=BaseModel)

_SUBJECTS = (
    "Card declined at checkout",
    "Cannot log in since the update",
    "Invoice shows the wrong VAT",
    "Parcel never arrived",
)


def case_events(count: int, *, keys: int, tag: str) -> Iterator[Envelope[CaseEvent]]:
    """``count`` case events over ``keys`` case ids; event ids ``<tag>-<n>``."""
    for n in range(count):
        case_id = f"500{tag[:6]}{n % keys:06d}"
        yield Envelope[CaseEvent](
            id=f"{tag}-{n}",
            source="bench",
            type="crm.case.created",
            schemaversion=1,
            subject=case_id,
            data=CaseEvent(
                case_id=case_id,
                subject=_SUBJECTS[n % len(_SUBJECTS)],
                description=f"Ticket {n}: the customer reports the problem again and asks for a call back.",
                origin="Web",
            ),
        )


def answer(request: ChatRequest) -> Reply:
    """The model's reply: a valid classification (usage estimated from the text, like a real endpoint)."""
    return Reply(
        {
            "category": "Payments",
            "queue": "billing",
            "priority": "High",
            "sentiment": "negative",
            "language": "en",
            "escalate": False,
            "escalation_reason": None,
            "confidence": {"category": 0.9, "priority": 0.8, "sentiment": 0.7, "language": 0.99},
            "rationale": "card declined",
        }
    )


class _TimedProvider:
    """The OpenAI provider, timing each call: the time it holds one of the client's C slots."""

    def __init__(self, inner: OpenAIProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.model = inner.model
        self.first_start: float | None = None
        self.busy_s = 0.0
        self.calls = 0

    async def complete(self, spec: TaskSpec[OutT], payload: Mapping[str, Any]) -> Completion[OutT]:
        started = time.monotonic()
        if self.first_start is None:
            self.first_start = started
        try:
            return await self._inner.complete(spec, payload)
        finally:
            self.busy_s += time.monotonic() - started
            self.calls += 1

    async def aclose(self) -> None:
        await self._inner.aclose()


class Workload:
    """The work of one contender process, and how busy it kept the model endpoint.

    ``measure_events``: after that many results, the use of the endpoint's C slots
    from the first call on (``slots_busy``: slot-seconds used ÷ C × elapsed;
    ``call_ms``: mean time one call held a slot) is written to ``stats_file``.
    """

    def __init__(self, base_url: str, concurrency: int, *, measure_events: int, stats_file: Path) -> None:
        self._provider = _TimedProvider(
            OpenAIProvider(model="gpt-4o-mini", base_url=base_url, api_key="sk-bench", timeout=30)
        )
        self.llm = LLMClient(
            self._provider, limiter=Limiter(max_concurrency=concurrency), retry=RetryPolicy(deadline=600), cache=None
        )
        self._concurrency = concurrency
        self._measure_events = measure_events
        self._stats_file = stats_file
        self._done = 0

    async def classify(self, envelope: Envelope[Any]) -> tuple[bytes, bytes]:
        """The work of one event: (key, value) of its result record."""
        case: CaseEvent = envelope.data
        run = await self.llm.run(CLASSIFY_TICKET, ticket_payload(case))
        result = {
            "source_event_id": envelope.id,
            "case_id": case.case_id,
            "category": run.output.category,
            "priority": run.output.priority,
            "input_hash": run.input_hash,
        }
        self._done += 1
        if self._done == self._measure_events:
            self._write_stats()
        return case.case_id.encode(), json.dumps(result).encode()

    def _write_stats(self) -> None:
        p = self._provider
        elapsed = time.monotonic() - (p.first_start or time.monotonic())
        stats = {
            "slots_busy": p.busy_s / (self._concurrency * elapsed) if elapsed > 0 else None,
            "call_ms": p.busy_s / p.calls * 1000 if p.calls else None,
        }
        self._stats_file.write_text(json.dumps(stats))

    async def aclose(self) -> None:
        await self.llm.aclose()
