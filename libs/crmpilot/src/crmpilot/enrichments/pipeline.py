"""The one pipeline every declared enrichment runs: event in, ``ai.enrichment.completed`` out.

The steps, in order:

1. **type**: the event's type must be one the spec accepts (else a poison record: DLQ);
2. **re-run**: an ``*.updated`` event re-runs only when a ``source.rerun_on`` field changed, and
   never when it changed only fields this enrichment writes (its own write-back); a generic
   record event of another object than the CRM target is not this enrichment's;
3. **source**: the record key, the CRM record id and every input are read from ``data`` by path;
4. **result id**: source event id + enrichment + prompt version (the sinks' idempotency key);
5. **skip**: when every input but the ``context`` ones is empty or not text, a ``skip`` result, no model call;
6. **budget**: each input with ``max_tokens`` is cut to it (recorded in ``truncated_chars``);
7. **model run**: the LLM client (any provider) returns the spec's closed output model;
8. **hooks**, **grounding** (extractive text and quotes must be verbatim spans of the
   inputs), then the **review** of each field against its thresholds, and the
   result's (``skip`` when no field is to be written, ``auto_apply`` when all are);
9. **emit** the result on the spec's output topic, keyed by the record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmpilot.events import Envelope, EnrichmentResult, PoisonMessage, ReviewDecision, result_id_for
from crmpilot.events.models import InputSkipped, cut_to_token_budget
from crmpilot.llm import LLMClient
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span
from crmpilot.tasks.results import UnexpectedEventType, result_output, skipped_provenance, source_of
from crmpilot.tasks.review import review_decision

from .hooks import Hook
from .spec import EnrichmentSpec, QuotesOutput, TextOutput
from .task import task_for

__all__ = ["EVENT_TYPE", "EnrichmentHandler", "HookFailed", "MissingField", "overall_review", "value_at"]

EVENT_TYPE = "ai.enrichment.completed"
_SPACE = re.compile(r"\s+")


class MissingField(PoisonMessage):
    code = "missing_field"


class HookFailed(PoisonMessage):
    code = "hook_failed"


def value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of ``data``; :class:`KeyError` naming the path when absent."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def overall_review(decisions: Mapping[str, ReviewDecision]) -> ReviewDecision:
    """``skip`` when no field is to be written, ``auto_apply`` when every written one is, else ``suggest``."""
    written = [d for d in decisions.values() if d != "skip"]
    if not written:
        return "skip"
    return "auto_apply" if all(d == "auto_apply" for d in written) else "suggest"


def _squeezed(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class EnrichmentHandler:
    """Runs ``spec`` on one event (the consumer runtime calls it per record, keys in order)."""

    spec: EnrichmentSpec
    llm: LLMClient
    token_model: str = "gpt-4o-mini"
    hooks: tuple[Hook, ...] = ()
    _rerun_on: frozenset[str] = field(init=False)
    _own_fields: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rerun_on", frozenset(f.lower() for f in self.spec.source.rerun_on))
        own = self.spec.crm.written_fields if self.spec.crm else ()
        object.__setattr__(self, "_own_fields", frozenset(f.lower() for f in own))

    @property
    def source(self) -> str:
        return f"crmpilot/enricher/{self.spec.name}"

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        spec = self.spec
        with process_span(ctx, event_id=envelope.id) as span:
            if envelope.type not in spec.source.event_types:
                raise UnexpectedEventType(f"{spec.name} reads {', '.join(spec.source.event_types)} events, got {envelope.type!r}")
            data = envelope.data.model_dump(mode="json")
            if self._unchanged(envelope.type, data) or not self._our_object(data):
                return ()
            key = self._required(data, spec.source.key, "key")
            record_id = self._required(data, spec.crm.record_id, "CRM record id") if spec.crm else key
            payload = {name: self._input(data, inp.path) for name, inp in spec.inputs.items()}
            task = task_for(spec)
            source = source_of(envelope, ctx)
            result_id = result_id_for(envelope.id, spec.name, spec.prompt.version)
            read = [name for name, inp in spec.inputs.items() if not inp.context]
            skipped = InputSkipped.for_text("\n".join(payload[n] for n in read), what=f"{spec.name} input")
            if skipped is not None:
                span.set_attribute("crmpilot.input.skipped", skipped.reason)
                result = EnrichmentResult(
                    result_id=result_id,
                    task=spec.name,
                    enrichment_version=spec.version,
                    review="skip",
                    provenance=skipped_provenance(self.llm, task, payload, source),
                    skipped=skipped,
                    record_id=record_id,
                )
            else:
                cut = 0
                for name, inp in spec.inputs.items():
                    if inp.max_tokens:
                        payload[name], chars = cut_to_token_budget(payload[name], inp.max_tokens, self._count_tokens)
                        cut += chars
                if cut:
                    span.set_attribute("crmpilot.input.truncated_chars", cut)
                run = await self.llm.run(task, payload)
                result = self._result(result_id, record_id, run.output.model_dump(mode="json"), payload, run.provenance(**source), cut)
            return (result_output(spec.topic, result, event_type=EVENT_TYPE, source=self.source, subject=key),)

    def _unchanged(self, event_type: str, data: Mapping[str, Any]) -> bool:
        """An update that changed no ``rerun_on`` field, or only the fields this enrichment writes itself (no loop)."""
        if not event_type.endswith(".updated"):
            return False
        changed = {str(f).lower() for f in data.get("changed_fields") or ()}
        if changed and changed <= self._own_fields:
            return True
        return bool(self._rerun_on) and not changed & self._rerun_on

    def _our_object(self, data: Mapping[str, Any]) -> bool:
        """A generic record event (``sobject`` in data) of another object than the CRM target is not ours."""
        sobject = data.get("sobject")
        return self.spec.crm is None or not isinstance(sobject, str) or sobject.lower() == self.spec.crm.object.lower()

    def _required(self, data: Mapping[str, Any], path: str, what: str) -> str:
        try:
            value = value_at(data, path)
        except KeyError:
            raise MissingField(f"{self.spec.name}: the event has no {what} at data.{path}") from None
        if value is None or str(value) == "":
            raise MissingField(f"{self.spec.name}: the {what} at data.{path} is empty")
        if len(str(value)) > 200:
            raise MissingField(f"{self.spec.name}: the {what} at data.{path} is {len(str(value))} characters, at most 200")
        return str(value)

    def _input(self, data: Mapping[str, Any], path: str) -> str:
        try:
            value = value_at(data, path)
        except KeyError:
            raise MissingField(f"{self.spec.name}: the event has no input at data.{path}") from None
        return "" if value is None else str(value)

    def _count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.token_model)

    def _result(
        self, result_id: str, record_id: str, answer: dict[str, Any], payload: Mapping[str, str], provenance: Any, cut: int
    ) -> EnrichmentResult:
        spec = self.spec
        confidence: dict[str, float] = answer.pop("confidence")
        if self.hooks:
            answer = self._run_hooks(answer, confidence, payload)
        failures = self._grounding(answer, payload)
        decisions: dict[str, ReviewDecision] = {}
        reasons: dict[str, str] = {}
        for name, out in spec.outputs.items():
            th = spec.thresholds(name)
            decision = review_decision(confidence[name], threshold_high=th.auto_apply, threshold_low=th.suggest)
            if decision != "auto_apply":
                reasons[name] = "low_confidence"
            if answer.get(name) in ("", None, []):
                decision, reasons[name] = "skip", "no_answer"
            elif name in failures and decision == "auto_apply":
                decision, reasons[name] = "suggest", "not_grounded"
            decisions[name] = decision
        return EnrichmentResult(
            result_id=result_id,
            task=spec.name,
            enrichment_version=spec.version,
            review=overall_review(decisions),
            provenance=provenance,
            truncated_chars=cut,
            record_id=record_id,
            outputs=answer,
            confidence=confidence,
            field_review=decisions,
            review_reasons=reasons,
            grounding_failures=tuple(q for qs in failures.values() for q in qs),
        )

    def _run_hooks(self, answer: dict[str, Any], confidence: dict[str, float], payload: Mapping[str, str]) -> dict[str, Any]:
        """The answer after every hook, validated again; a hook that fails or leaves the vocabulary is :class:`HookFailed`."""
        try:
            for fn in self.hooks:
                answer = fn(dict(answer), payload)
            model = task_for(self.spec).output_model
            checked = model.model_validate({**answer, "confidence": confidence}).model_dump(mode="json")
        except Exception as exc:  # noqa: BLE001 - a hook is user code: any failure is this record's, reported with its cause
            raise HookFailed(f"{self.spec.name}: a hook failed on this record: {type(exc).__name__}: {exc}"[:1000]) from exc
        checked.pop("confidence")
        return checked

    def _grounding(self, answer: Mapping[str, Any], payload: Mapping[str, str]) -> dict[str, list[str]]:
        """Per extractive field: the quotes not found verbatim (whitespace runs aside) in its source inputs."""
        failures: dict[str, list[str]] = {}
        for name, out in self.spec.outputs.items():
            if isinstance(out, TextOutput) and out.extractive:
                quotes = [answer.get(name) or ""]
                sources = out.source or tuple(self.spec.inputs)
            elif isinstance(out, QuotesOutput):
                quotes = [item["quote"] for item in answer.get(name) or ()]
                sources = tuple(self.spec.inputs)
            else:
                continue
            haystack = _squeezed("\n".join(payload[s] for s in sources))
            missing = [q for q in quotes if q and _squeezed(q) not in haystack]
            if missing:
                failures[name] = missing
        return failures
