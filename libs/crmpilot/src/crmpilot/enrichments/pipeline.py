"""The one pipeline every enrichment runs: a source event in, one result event out.

:class:`Pipeline` holds the steps, in order; what varies between enrichments is
a :class:`Reading` of the event and the result it builds (:meth:`Pipeline.completed`,
:meth:`Pipeline.skipped`). A declared enrichment (:class:`EnrichmentHandler`) gets
both from its spec file (the built-in ``score_request`` too); the built-in tasks still in code
(ticket_classifier, email_summarizer) get them from their small adapters
(``services/<task>/handler.py``), which build their own typed result events.

1. **type**: the event's type must be one the enrichment accepts (else a poison record: DLQ);
2. **read**: the record key, the task input and its token budgets; ``None`` when the event is
   not worth a run (an update that changed nothing the enrichment reads, its own write-back,
   another object's record event), so nothing is emitted;
3. **result id**: source event id + task + prompt version (the sinks' idempotency key);
4. **skip**: an empty or non-text input gets a ``skip`` result, no model call;
5. **budget**: each input with a budget is cut to it (recorded in ``truncated_chars``);
6. **model run**: the LLM client (any provider) returns the task's closed output model; a
   prompt the endpoint finds longer than its context window (:class:`LLMContextOverflow`)
   has its text inputs cut in proportion to fit, once, and is asked again; a second
   overflow is this record's error (non-retryable: the DLQ, with the server's reason);
7. **result**: the enrichment's checks (hooks, grounding) and review decision;
8. **emit** the result on the output topic, keyed by the record, with the trace.

For a declared enrichment, step 7 runs the hooks, then **grounding** (extractive text,
each of its sentences when it has several, and quotes must be verbatim spans of the
inputs), then the **review** of each field against its thresholds, and the result's
(``skip`` when no field is to be written, ``auto_apply`` when all are).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter

from crmpilot.events import EnrichmentResult, Envelope, PoisonMessage, ReviewDecision, result_id_for
from crmpilot.events.models import InputSkipped, Provenance, cut_to_token_budget
from crmpilot.llm import LLMClient
from crmpilot.llm.base import TaskSpec
from crmpilot.llm.errors import LLMContextOverflow
from crmpilot.llm.tokens import estimate_tokens
from crmpilot.streaming import MessageContext, Output
from crmpilot.streaming.tracing import process_span
from crmpilot.text import email_domain, sentences

from .hooks import Hook
from .results import UnexpectedEventType, result_output, review_decision, skipped_provenance, source_of
from .spec import EnrichmentSpec, EnumOutput, InputField, ItemsOutput, QuotesOutput, TextOutput, Where
from .task import result_model, task_for

__all__ = [
    "EVENT_TYPE",
    "EnrichmentHandler",
    "HookFailed",
    "MissingField",
    "Pipeline",
    "Reading",
    "TaskPipeline",
    "Filter",
    "overall_review",
    "value_at",
]

EVENT_TYPE = "ai.enrichment.completed"
_SPACE = re.compile(r"\s+")
R = TypeVar("R")


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


_RANK: dict[ReviewDecision, int] = {"skip": 0, "suggest": 1, "auto_apply": 2}


@dataclass(frozen=True, slots=True)
class Filter:
    """A spec's ``where``, compiled for its event types: a typed event field's values compare as that type's values
    (an amount of ``1000.00`` is ``1000``), a ``fields.X`` value of a record event as it is."""

    tests: tuple[tuple[str, TypeAdapter[Any] | None, tuple[Any, ...]], ...] = ()

    @classmethod
    def of(cls, where: Where, models: Sequence[type[BaseModel]] = ()) -> Filter:
        tests = []
        for path, allowed in where.items():
            info = next((m.model_fields[path] for m in models if path in m.model_fields), None)
            adapter: TypeAdapter[Any] | None = None
            if info is not None and info.annotation is not None:
                adapter = TypeAdapter(info.annotation)
                allowed = tuple(adapter.validate_python(v) for v in allowed)  # checked at load: they validate
            tests.append((path, adapter, tuple(allowed)))
        return cls(tuple(tests))

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` holds one of the allowed values at every path (an absent path holds none)."""
        for path, adapter, allowed in self.tests:
            try:
                value = value_at(data, path)
            except KeyError:
                return False
            if adapter is not None:
                value = adapter.validate_python(value)
            if not any(_same(value, a) for a in allowed):
                return False
        return True


def _present(data: Mapping[str, Any], path: str) -> bool:
    try:
        return value_at(data, path) not in (None, "")
    except KeyError:
        return False


def _same(value: Any, allowed: Any) -> bool:
    """Equal, with ``true`` never equal to ``1`` (Python's ``True == 1``)."""
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    return bool(value == allowed)


def _not_in_order(text: str, haystack: str, most: int) -> list[str]:
    """The sentences of ``text`` that are not sentences of ``haystack`` (whitespace squeezed) after the one before
    them, or beyond the first ``most``: a repeated, reordered or extra sentence is not grounded."""
    missing, at = [], 0
    for n, sentence in enumerate(s.text for s in sentences(text)):
        found = haystack.find(_squeezed(sentence), at)
        if found < 0 or n >= most:
            missing.append(sentence)
        else:
            at = found + len(_squeezed(sentence))
    return missing


@dataclass(frozen=True, slots=True)
class _Record:
    """The CRM record a declared result is about, and whether the spec's ``crm.where`` lets it be written."""

    record_id: str
    to_crm: bool


def overall_review(decisions: Mapping[str, ReviewDecision]) -> ReviewDecision:
    """``skip`` when no field is to be written, ``auto_apply`` when every written one is, else ``suggest``."""
    written = [d for d in decisions.values() if d != "skip"]
    if not written:
        return "skip"
    return "auto_apply" if all(d == "auto_apply" for d in written) else "suggest"


def _squeezed(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class Reading:
    """What an enrichment reads from one event."""

    key: str
    """The result event's subject (its Kafka key): results of one record stay in order."""
    payload: dict[str, Any]
    """The task input, before the token budgets."""
    skipped: InputSkipped | None = None
    """Set when there is nothing to read: a ``skip`` result, no model call."""
    budgets: Mapping[str, int] = field(default_factory=dict)
    """Input name -> at most this many tokens (a text input is cut to it)."""
    about: Any = None
    """What the result is about, as the enrichment needs it back (the event's data, a CRM record id)."""


@dataclass(frozen=True, slots=True)
class Run:
    """One event through the steps: what the result is built from."""

    result_id: str
    reading: Reading
    provenance: Provenance
    payload: dict[str, Any] = field(default_factory=dict)
    """The task input after the budgets (empty when skipped)."""
    output: Any = None
    """The task's validated output (``None`` when skipped)."""
    cut: int = 0
    """Characters the budgets cut."""

    @property
    def header(self) -> dict[str, Any]:
        """The fields every result event has: id, provenance, the cut, and for a skip its reason and decision."""
        if self.reading.skipped is not None:
            return {
                "result_id": self.result_id,
                "provenance": self.provenance,
                "skipped": self.reading.skipped,
                "review": "skip",
            }
        return {"result_id": self.result_id, "provenance": self.provenance, "truncated_chars": self.cut}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline(ABC, Generic[R]):
    """The steps of every enrichment (see the module); a subclass says what it reads and builds."""

    llm: LLMClient
    token_model: str = "gpt-4o-mini"

    @property
    @abstractmethod
    def task(self) -> TaskSpec[Any]: ...

    @property
    @abstractmethod
    def event_types(self) -> frozenset[str] | tuple[str, ...]: ...

    @property
    @abstractmethod
    def result_type(self) -> str:
        """The event type of the result (``ai.ticket.classified``, ``ai.enrichment.completed``)."""

    @property
    @abstractmethod
    def topic(self) -> str:
        """The output topic."""

    @property
    @abstractmethod
    def source(self) -> str:
        """The result events' CloudEvents ``source``."""

    @abstractmethod
    def read(self, envelope: Envelope[Any]) -> Reading | None:
        """Step 2; ``None``: this event is not worth a run."""

    @abstractmethod
    def completed(self, run: Run) -> R:
        """Step 7: the result of a model run on ``run.payload`` (the input after the budgets)."""

    @abstractmethod
    def skipped(self, run: Run) -> R:
        """The result of an event with nothing to read (``run.reading.skipped``), no model asked."""

    async def __call__(self, envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        with process_span(ctx, event_id=envelope.id) as span:
            if envelope.type not in self.event_types:
                raise UnexpectedEventType(
                    f"{ctx.topic}: {self.task.name} reads {', '.join(sorted(self.event_types))} events, got "
                    f"{envelope.type!r}"
                )
            reading = self.read(envelope)
            if reading is None:
                return ()
            task = self.task
            source = source_of(envelope, ctx)
            result_id = result_id_for(envelope.id, task.name, task.prompt.version)
            if reading.skipped is not None:
                span.set_attribute("crmpilot.input.skipped", reading.skipped.reason)
                result = self.skipped(
                    Run(result_id, reading, skipped_provenance(self.llm, task, reading.payload, source))
                )
            else:
                payload, cut = dict(reading.payload), 0
                for name, budget in reading.budgets.items():
                    payload[name], chars = cut_to_token_budget(payload[name], budget, self._count_tokens)
                    cut += chars
                try:
                    answer = await self.llm.run(task, payload)
                except LLMContextOverflow as exc:
                    payload, more = self._fit_context(payload, reading.budgets, exc)
                    if not more:
                        raise
                    cut += more
                    span.add_event(
                        "crmpilot.input.cut_to_context",
                        {"n_prompt_tokens": exc.n_prompt_tokens or 0, "n_ctx": exc.n_ctx or 0},
                    )
                    answer = await self.llm.run(task, payload)  # a second overflow is this record's error
                if cut:
                    span.set_attribute("crmpilot.input.truncated_chars", cut)
                result = self.completed(
                    Run(result_id, reading, answer.provenance(**source), payload, answer.output, cut)
                )
            return (
                result_output(self.topic, result, event_type=self.result_type, source=self.source, subject=reading.key),
            )

    def _count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.token_model)

    def _fit_context(
        self, payload: dict[str, Any], budgets: Mapping[str, int], exc: LLMContextOverflow
    ) -> tuple[dict[str, Any], int]:
        """``payload`` with its text inputs (the budgeted ones, else every string) cut so that the prompt fills
        about ``CONTEXT_FILL`` of the context the endpoint reported (half of them when it gave no counts); and
        the characters cut."""
        names = [n for n in (budgets or payload) if isinstance(payload.get(n), str) and payload[n]]
        tokens = {n: self._count_tokens(payload[n]) for n in names}
        total = sum(tokens.values())
        if total < 2:
            return payload, 0
        if exc.n_prompt_tokens and exc.n_ctx:
            excess = exc.n_prompt_tokens - CONTEXT_FILL * exc.n_ctx  # tokens to take out of the texts
            ratio = max(0.0, (total - excess) / total)
        else:
            ratio = 0.5
        fitted, cut = dict(payload), 0
        for name, n in tokens.items():
            fitted[name], chars = cut_to_token_budget(fitted[name], max(1, int(n * ratio)), self._count_tokens)
            cut += chars
        return fitted, cut


CONTEXT_FILL = 0.7
"""After a context overflow, the prompt is cut to about this share of the endpoint's context (the rest is the
instructions' share that is not cut, the answer's room and the estimate's error)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPipeline(Pipeline[R]):
    """A pipeline for a task given as code (a built-in :class:`TaskSpec`) and its output topic."""

    spec: TaskSpec[Any]
    output_topic: str

    @property
    def task(self) -> TaskSpec[Any]:
        return self.spec

    @property
    def topic(self) -> str:
        return self.output_topic


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrichmentHandler(Pipeline[EnrichmentResult]):
    """Runs a declared ``spec`` on one event (the consumer runtime calls it per record, keys in order)."""

    spec: EnrichmentSpec
    hooks: tuple[Hook, ...] = ()
    _rerun_on: frozenset[str] = field(init=False)
    _own_fields: frozenset[str] = field(init=False)
    _result_model: type[BaseModel] = field(init=False)
    _source_where: Filter = field(init=False)
    _crm_where: Filter = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_result_model", result_model(self.spec))
        from crmpilot.events.registry import latest_version, model_for  # the contracts the filters compare with

        models = [model_for(t, latest_version(t)) for t in self.spec.source.event_types]  # known: checked at load
        object.__setattr__(self, "_source_where", Filter.of(self.spec.source.where, models))
        object.__setattr__(self, "_crm_where", Filter.of(self.spec.crm.where if self.spec.crm else {}, models))
        rerun = set(self.spec.source.rerun_on)
        if rerun:  # a record whose filter field changed may enter the filter: it runs again
            filters = [*self.spec.source.where, *(self.spec.crm.where if self.spec.crm else ())]
            rerun |= {path.removeprefix("fields.") for path in filters if path.startswith("fields.")}
        object.__setattr__(self, "_rerun_on", frozenset(f.lower() for f in rerun))
        own = self.spec.crm.written_fields if self.spec.crm else ()
        object.__setattr__(self, "_own_fields", frozenset(f.lower() for f in own))

    @property
    def task(self) -> TaskSpec[Any]:
        return task_for(self.spec)

    @property
    def event_types(self) -> tuple[str, ...]:
        return self.spec.source.event_types

    @property
    def result_type(self) -> str:
        return EVENT_TYPE

    @property
    def topic(self) -> str:
        return self.spec.topic

    @property
    def source(self) -> str:
        return f"crmpilot/enricher/{self.spec.name}"

    def read(self, envelope: Envelope[Any]) -> Reading | None:
        spec = self.spec
        data = envelope.data.model_dump(mode="json")
        if self._unchanged(envelope.type, data) or not self._our_object(data) or not self._source_where.matches(data):
            return None
        key = self._required(data, spec.source.key, "key")
        to_crm = spec.crm is not None and self._crm_where.matches(data)
        record_id = key
        if spec.crm is not None and (to_crm or _present(data, spec.crm.record_id)):  # the record, written or not
            record_id = self._required(data, spec.crm.record_id, "CRM record id")
        payload = {name: self._input(data, inp) for name, inp in spec.inputs.items()}
        read = [name for name, inp in spec.inputs.items() if not inp.context]
        skipped = InputSkipped.for_text("\n".join(payload[n] for n in read), what=f"{spec.name} input")
        budgets = {name: inp.max_tokens for name, inp in spec.inputs.items() if inp.max_tokens}
        return Reading(key=key, payload=payload, skipped=skipped, budgets=budgets, about=_Record(record_id, to_crm))

    def _about(self, run: Run) -> dict[str, Any]:
        record: _Record = run.reading.about
        return {
            "task": self.spec.name,
            "enrichment_version": self.spec.version,
            "record_id": record.record_id,
            "to_crm": record.to_crm,
        }

    def skipped(self, run: Run) -> EnrichmentResult:
        return EnrichmentResult(**run.header, **self._about(run))

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
            raise MissingField(
                f"{self.spec.name}: the {what} at data.{path} is {len(str(value))} characters, at most 200"
            )
        return str(value)

    def _input(self, data: Mapping[str, Any], inp: InputField) -> str:
        try:
            value = value_at(data, inp.path)
        except KeyError:
            raise MissingField(f"{self.spec.name}: the event has no input at data.{inp.path}") from None
        text = "" if value is None else str(value)
        if inp.transform == "email_domain":
            text = email_domain(text)
        return text

    def completed(self, run: Run) -> EnrichmentResult:
        spec, payload = self.spec, run.payload
        answer: dict[str, Any] = run.output.model_dump(mode="json")
        confidence: dict[str, float] = answer.pop("confidence")
        for name, out in spec.derived.items():  # as sure as the least sure of what it is derived from
            confidence[name] = min(confidence[f] for f in out.derived_from)
        if self.hooks or spec.derived:
            answer = self._run_hooks(answer, confidence, payload)
        failures = self._grounding(answer, payload)
        decisions: dict[str, ReviewDecision] = {}
        reasons: dict[str, str] = {}
        for name, out in spec.outputs.items():
            th = spec.thresholds(name)
            decision = review_decision(confidence[name], threshold_high=th.auto_apply, threshold_low=th.suggest)
            if decision != "auto_apply":
                # an enum answer with confidence 0: no value fits the input (the local provider's out-of-scope gate)
                no_value_fits = isinstance(out, EnumOutput) and confidence[name] == 0
                reasons[name] = "out_of_scope" if no_value_fits else "low_confidence"
            if answer.get(name) in ("", None, []):
                decision, reasons[name] = "skip", "no_answer"
            elif name in failures and decision == "auto_apply":
                decision, reasons[name] = "suggest", "not_grounded"
            decisions[name] = decision
        for name, out in spec.derived.items():  # never surer than what it is derived from
            worst = min(out.derived_from, key=lambda f: _RANK[decisions[f]])
            if _RANK[decisions[worst]] < _RANK[decisions[name]]:
                decisions[name], reasons[name] = decisions[worst], reasons.get(worst, "low_confidence")
        return EnrichmentResult(
            **run.header,
            **self._about(run),
            review=overall_review(decisions),
            outputs=answer,
            confidence=confidence,
            field_review=decisions,
            review_reasons=reasons,
            grounding_failures=tuple(q for qs in failures.values() for q in qs),
        )

    def _run_hooks(
        self, answer: dict[str, Any], confidence: dict[str, float], payload: Mapping[str, str]
    ) -> dict[str, Any]:
        """The answer after every hook, validated again; a hook that fails or leaves the vocabulary is
        :class:`HookFailed`."""
        try:
            for fn in self.hooks:
                answer = fn(dict(answer), payload)
        except Exception as exc:  # a hook is user code: any failure is this record's, reported with its cause
            raise HookFailed(
                f"{self.spec.name}: a hook failed on this record: {type(exc).__name__}: {exc}"[:1000]
            ) from exc
        if unset := [name for name in self.spec.derived if name not in answer]:
            raise HookFailed(f"{self.spec.name}: no hook set the derived output {', '.join(unset)}")
        try:
            checked = self._result_model.model_validate({**answer, "confidence": confidence}).model_dump(mode="json")
        except Exception as exc:
            raise HookFailed(
                f"{self.spec.name}: the hooks left a value outside the spec: {type(exc).__name__}: {exc}"[:1000]
            ) from exc
        checked.pop("confidence")
        return checked

    def _grounding(self, answer: Mapping[str, Any], payload: Mapping[str, str]) -> dict[str, list[str]]:
        """Per extractive field: the quotes not found verbatim (whitespace runs aside) in its source inputs."""
        failures: dict[str, list[str]] = {}
        for name, out in self.spec.outputs.items():
            if isinstance(out, TextOutput) and out.extractive:
                quotes = [answer.get(name) or ""]
                sources = out.source or tuple(self.spec.inputs)
            elif isinstance(out, QuotesOutput) or (isinstance(out, ItemsOutput) and out.quote):
                quotes = [item["quote"] for item in answer.get(name) or ()]
                sources = tuple(self.spec.inputs)
            else:
                continue
            haystack = _squeezed("\n".join(payload[s] for s in sources))
            if isinstance(out, TextOutput) and out.max_sentences > 1:
                missing = _not_in_order(quotes[0], haystack, out.max_sentences)
            else:
                if isinstance(out, TextOutput):  # an empty extractive field is no answer, not a failed quote
                    quotes = [q for q in quotes if q]
                missing = [q for q in quotes if not _squeezed(q) or _squeezed(q) not in haystack]
            if missing:
                failures[name] = missing
        return failures
