"""The model interface: what a task asks of a provider, and what comes back.

A *task* is a versioned prompt plus a pydantic output model (the built-in ones
live in ``crmpilot.tasks``, declared ones are built from a spec file). A
*provider* turns a task and its input into a validated output: the OpenAI
provider by a chat completion with a JSON schema, the local provider by its
generic answerer for declared outputs or by the method a task brings
(``TaskSpec.local``). Both return the same output models, so a service never
knows which one ran, and this layer knows no task by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

__all__ = [
    "Prompt",
    "TaskSpec",
    "Label",
    "LocalAnswer",
    "LocalMethod",
    "OutputShape",
    "Completion",
    "ConfidenceSource",
    "Provider",
    "Usage",
    "input_hash",
]

OutT = TypeVar("OutT", bound=BaseModel)

ConfidenceSource = Literal["logprobs", "self_report", "local"]
"""Where a result's confidence came from: the probabilities of the tokens the model wrote
(:mod:`crmpilot.llm.logprobs`), the model's own report, or the embedded model's scores."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """A versioned prompt. ``hash`` changes whenever its text changes."""

    id: str
    version: str
    system: str
    user_template: str

    @property
    def hash(self) -> str:
        text = f"{self.id}\x1f{self.version}\x1f{self.system}\x1f{self.user_template}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def render_user(self, payload: Mapping[str, Any]) -> str:
        """The user message: ``user_template`` filled with ``str.format_map(payload)``.

        String values go in as they are; other values as compact JSON. Braces inside
        the values are never interpreted, so input text cannot reach the template.
        Missing keys raise ``KeyError`` (a task bug, not a model fault).
        """
        values = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str) for k, v in payload.items()
        }
        return self.user_template.format_map(values)


@dataclass(frozen=True, slots=True)
class Label:
    """One value of a closed vocabulary and what it means."""

    name: str
    description: str
    queue: str = ""
    """Where a record with this value is routed (a ticket category's queue); empty when nothing is routed."""


@dataclass(frozen=True, slots=True)
class OutputShape:
    """One output field of a declared task, as a provider without a chat model needs to know it.

    ``kind``: ``enum`` (one of ``labels``), ``multi_enum`` (any of ``labels``), ``boolean``, ``number``, ``text``
    (``extractive``: a verbatim span of the inputs in ``sources``) or ``quotes``.
    """

    name: str
    kind: str
    description: str = ""
    labels: tuple[Label, ...] = ()
    extractive: bool = False
    sources: tuple[str, ...] = ()
    max_length: int | None = None
    max_sentences: int = 1
    """extractive text: up to this many sentences of the sources, in their order."""
    rule: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, float]] | None = None
    """A registered local rule that answers this field on a provider without a chat model: ``rule(inputs, answer so
    far)`` -> ``(value, confidence)``."""


@dataclass(frozen=True, slots=True)
class TaskSpec(Generic[OutT]):
    """One task: its name, prompt and the closed output model it must return."""

    name: str
    prompt: Prompt
    output_model: type[OutT]
    restore_fields: tuple[str, ...] = ()
    """Output string fields where PII placeholders (``<EMAIL_1>``) are put back after the call."""
    outputs: tuple[OutputShape, ...] = ()
    """A declared task's output fields (each also has its confidence under ``confidence``); empty for the built-in
    tasks."""
    local: LocalMethod | None = None
    """How a provider without a chat model (the embedded one) answers the whole task: a built-in task's method, or a
    declared task's registered local method (which then answers every output)."""
    logprob_confidence: tuple[tuple[str, str], ...] = ()
    """``(confidence path, field)`` pairs: where an endpoint returns token log-probabilities, the confidence at
    the path (``confidence`` or ``confidence.<name>``) becomes the probability of that enum or boolean field's
    value (:mod:`crmpilot.llm.logprobs`) instead of the model's own report."""


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """What a task's local method returns: the output (the model, or its fields), the tokens the model read, extra
    provenance."""

    output: BaseModel | Mapping[str, Any]
    tokens: int
    extra: Mapping[str, Any] = field(default_factory=dict)


LocalMethod = Callable[[Any, "TaskSpec[Any]", Mapping[str, Any]], Awaitable[LocalAnswer]]
"""``(provider, spec, payload) -> LocalAnswer``: the provider gives its encoder (``batcher``) and heads
(``head_for``)."""


@dataclass(frozen=True, slots=True)
class Completion(Generic[OutT]):
    """A provider's validated answer with what it cost in tokens."""

    output: OutT
    model: str
    tokens_in: int
    tokens_out: int
    model_version: str | None = None
    response_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    requests: int = 1
    """HTTP requests (or model invocations) it took, re-asks included."""
    finish_reasons: tuple[str, ...] = ()
    usage_estimated: bool = False
    """True when the endpoint reported no usage and the tokens are an estimate."""
    confidence_source: ConfidenceSource = "self_report"
    """Where the output's confidences come from (:data:`ConfidenceSource`)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What calls cost so far: tokens, requests and US dollars."""

    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0
    cost_usd: Decimal = Decimal(0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            self.requests + other.requests,
            self.cost_usd + other.cost_usd,
        )


class Provider(Protocol):
    """Runs a task on a model. Raises ``crmpilot.llm.errors`` types on failure.

    Optional attributes the client reads when present (``getattr``): ``model``
    (the requested model name, for span names, cache keys and prices),
    ``server_address`` and ``server_port`` (span attributes), and an async
    ``aclose()``.
    """

    name: str

    async def complete(self, spec: TaskSpec[OutT], payload: Mapping[str, Any]) -> Completion[OutT]: ...


def input_hash(payload: Mapping[str, Any]) -> str:
    """A stable hash of a task input (the redacted text a provider sees)."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
