"""The enrichment spec: one YAML file declares what an enrichment reads, asks, answers and writes.

:class:`EnrichmentSpec` is the pydantic model of such a file; its JSON Schema is
published as ``schemas/enrichment.schema.json`` for editor completion
(``crmpilot schemas write``). :func:`load_spec` reads a file and refuses it with
:class:`SpecError` problems that name the file, the line and the reason: pydantic's
error locations are mapped back to the YAML nodes they came from.

Semantics (checked here, beyond types):

- every ``{placeholder}`` of the prompt's user template is an input;
- every CRM field maps a declared output; an extractive text field reads declared inputs;
- thresholds are ordered (``suggest <= auto_apply``).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from crmpilot.errors import Fatal

__all__ = [
    "BooleanOutput",
    "CrmTarget",
    "EnrichmentSpec",
    "EnumOutput",
    "InputField",
    "ItemsOutput",
    "MultiEnumOutput",
    "NumberOutput",
    "OutputField",
    "PromptSpec",
    "QuotesOutput",
    "Review",
    "SourceSpec",
    "SpecError",
    "SpecProblem",
    "TextOutput",
    "Where",
    "load_spec",
    "parse_spec",
]

NAME = r"^[a-z][a-z0-9_]{0,39}$"
_CRM_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"
_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Review(_Strict):
    """Confidence thresholds of one field: auto-apply at or above ``auto_apply``, suggest at or above ``suggest``."""

    auto_apply: float = Field(default=0.8, ge=0, le=1)
    suggest: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.suggest > self.auto_apply:
            raise ValueError(f"suggest ({self.suggest}) must not exceed auto_apply ({self.auto_apply})")
        return self


class _Output(_Strict):
    description: str = Field(default="", max_length=2000, description="what the field means; the model reads it")
    review: Review | None = Field(default=None, description="this field's thresholds (default: the spec's review)")
    local: str | None = Field(
        default=None,
        pattern=NAME,
        description="a registered local rule (crmpilot.enrichments.hooks.local_rule) that answers this field on the "
        "local model, where it has no method of its own",
    )
    derived_from: tuple[str, ...] = Field(
        default=(),
        description="set by a hook from these outputs, never asked of the model; its confidence is the lowest of "
        "theirs (e.g. a band from a score)",
    )


class _Vocabulary(_Output):
    values: dict[str, str] = Field(min_length=1, max_length=500, description="value -> what it means")

    @field_validator("values")
    @classmethod
    def _values(cls, values: dict[str, str]) -> dict[str, str]:
        for value in values:
            if not value.strip() or len(value) > 255:
                raise ValueError(f"enum value {value!r} must be 1-255 characters")
            if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in value):
                raise ValueError(f"enum value {value!r} holds a control or invalid character")
        return values


class EnumOutput(_Vocabulary):
    """One value of a closed vocabulary; each value has a description (zero-shot reads it)."""

    type: Literal["enum"]


class MultiEnumOutput(_Vocabulary):
    """Zero or more values of a closed vocabulary (a Salesforce multi-select picklist), each at most once.

    An empty answer writes nothing (the field's review is ``skip``).
    """

    type: Literal["multi_enum"]
    max_items: int = Field(default=5, ge=1, le=100, description="at most this many values in one answer")

    @field_validator("values")
    @classmethod
    def _no_separator(cls, values: dict[str, str]) -> dict[str, str]:
        if stray := [v for v in values if ";" in v]:
            raise ValueError(f"multi_enum value {stray[0]!r} holds ';', the CRM's separator of selected values")
        return values


class BooleanOutput(_Output):
    type: Literal["boolean"]


class NumberOutput(_Output):
    type: Literal["number"]
    minimum: float
    maximum: float
    integer: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) exceeds maximum ({self.maximum})")
        return self


class TextOutput(_Output):
    """Bounded text. ``extractive``: a verbatim span of the inputs named in ``source`` (grounding-checked), or up to
    ``max_sentences`` of their sentences in their order, each grounded."""

    type: Literal["text"]
    max_length: int = Field(default=1000, ge=1, le=32000)
    extractive: bool = False
    source: tuple[str, ...] = Field(
        default=(), description="extractive: the inputs it is taken from (default: every input)"
    )
    max_sentences: int = Field(
        default=1,
        ge=1,
        le=20,
        description="extractive: up to this many sentences of the input, in its order, each grounded (a summary)",
    )


class QuotesOutput(_Output):
    """A list of items, each with a verbatim ``quote`` of the input (grounding-checked)."""

    type: Literal["quotes"]
    max_items: int = Field(default=5, ge=1, le=50)
    max_length: int = Field(default=500, ge=1, le=4000, description="of each item's text and quote")


ItemField = Annotated[EnumOutput | BooleanOutput | NumberOutput | TextOutput, Field(discriminator="type")]
"""One field of each item of an ``items`` output: an enum, boolean, bounded number or (non-extractive) text."""


class ItemsOutput(_Output):
    """A list of structured items (e.g. action items with an owner and a due date), each with the same typed fields.

    With ``quote``, every item also carries the verbatim sentence of the input that states it (grounding-checked).
    The fields have no thresholds of their own: the list has one confidence and one review, as every output.
    """

    type: Literal["items"]
    fields: dict[str, ItemField] = Field(min_length=1, max_length=20, description="name -> the field of every item")
    quote: bool = Field(default=False, description="each item also has a verbatim 'quote' of the input")
    max_items: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _plain_fields(self) -> Self:
        for name, item in self.fields.items():
            if not re.match(NAME, name) or (self.quote and name == "quote"):
                raise ValueError(f"item field {name!r} must be lower_snake and not 'quote' when quote is set")
            if name.startswith("model_"):
                raise ValueError(f"item field {name!r}: names starting with model_ are reserved")
            if item.review is not None or item.local is not None or item.derived_from:
                raise ValueError(f"item field {name!r}: the items share the output's review, local rule and derivation")
            if isinstance(item, TextOutput) and (item.extractive or item.source):
                raise ValueError(f"item field {name!r}: an item's text is not extractive; set quote: true instead")
        return self


OutputField = Annotated[
    EnumOutput | MultiEnumOutput | BooleanOutput | NumberOutput | TextOutput | QuotesOutput | ItemsOutput,
    Field(discriminator="type"),
]


Transform = Literal["email_domain"]
"""How an input is changed before anything sees it: ``email_domain`` keeps only the domain of an email address,
lower-cased (a name, a comment or anything else around the address is dropped; no plain address gives empty text), so
the address never reaches the model, the cache or the warehouse."""

Scalar = str | int | float | bool | None
Where = dict[Annotated[str, Field(pattern=_PATH)], Annotated[tuple[Scalar, ...], Field(min_length=1)]]
"""Path into the event's data -> the values it may have; every path must hold one of its values."""


class InputField(_Strict):
    """One input the model sees: where it comes from in the event's ``data``, and its token budget."""

    path: str = Field(pattern=_PATH, description="dotted path into the event's data, e.g. fields.Description")
    transform: Transform | None = Field(
        default=None,
        description="email_domain: only the domain of the address, lower-cased, is read (the address is never sent)",
    )
    max_tokens: int | None = Field(
        default=None, ge=20, le=100_000, description="text cut to this many tokens (the cut is recorded)"
    )
    personal: bool = Field(default=False, description="holds personal text: erasure and retention follow it")
    context: bool = Field(
        default=False,
        description="context only: when every input that is not context is empty or not text, no model is asked (a "
        "skip "
        "result)",
    )


class SourceSpec(_Strict):
    topics: tuple[str, ...] = Field(min_length=1, description="Kafka topics the enrichment reads")
    event_types: tuple[str, ...] = Field(min_length=1, description="accepted event types; others go to the DLQ")
    key: str = Field(pattern=_PATH, description="path of the record id in data: the result's key")
    rerun_on: tuple[str, ...] = Field(
        default=(), description="an *.updated event re-runs only when one of these fields changed (empty: every update)"
    )
    where: Where = Field(
        default_factory=dict,
        description="path -> values: only events whose data holds one of the values at every path are enriched "
        "(others: nothing is emitted)",
    )


class PromptSpec(_Strict):
    version: str = Field(min_length=1, max_length=40, description="bump it whenever the text changes")
    system: str = Field(min_length=1, max_length=20_000)
    user: str = Field(min_length=1, max_length=20_000, description="template: {input} placeholders")


class CrmTarget(_Strict):
    """Where results go in the CRM: any object, standard or custom fields."""

    object: str = Field(pattern=_CRM_NAME)
    record_id: str = Field(pattern=_PATH, description="path of the record id in the event's data")
    fields: dict[str, str] = Field(min_length=1, description="output field -> CRM field (API name)")
    result_id_field: str = Field(
        pattern=_CRM_NAME, description="text field holding the applied result id (idempotency marker)"
    )
    review_field: str | None = Field(
        default=None, pattern=_CRM_NAME, description="checkbox set when a written value is a suggestion"
    )
    trace_field: str | None = Field(default=None, pattern=_CRM_NAME, description="text field for the trace id")
    confidence_fields: dict[str, str] = Field(
        default_factory=dict,
        description="output field -> number field (API name) that gets that output's confidence (0..1, 4 decimals) "
        "whenever the output is written",
    )
    where: Where = Field(
        default_factory=dict,
        description="path -> values: only results of events whose data holds one of the values at every path are "
        "written to the CRM (the others still reach the warehouse)",
    )

    @model_validator(mode="after")
    def _names(self) -> Self:
        for crm_field in (*self.fields.values(), *self.confidence_fields.values()):
            if not re.match(_CRM_NAME, crm_field):
                raise ValueError(f"{crm_field!r} is not a CRM field API name")
        written = [f.lower() for f in self.written_fields]
        if doubled := sorted({f for f in written if written.count(f) > 1}):
            raise ValueError(f"{', '.join(doubled)}: a CRM field is written once (field names are not case-sensitive)")
        return self

    @property
    def written_fields(self) -> tuple[str, ...]:
        markers = (self.result_id_field, self.review_field, self.trace_field)
        return (*self.fields.values(), *self.confidence_fields.values(), *(f for f in markers if f))


class EnrichmentSpec(_Strict):
    """One enrichment: source, inputs, outputs, prompt, CRM target, privacy and hooks."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="crmpilot enrichment")

    name: str = Field(pattern=NAME, description="lower_snake name; the result's task and the view bi.<name>")
    version: int = Field(default=1, ge=1, description="of the spec's shape (outputs); the prompt has its own version")
    description: str = Field(default="", max_length=2000)
    source: SourceSpec
    inputs: dict[str, InputField] = Field(min_length=1)
    outputs: dict[str, OutputField] = Field(min_length=1, max_length=40)
    review: Review = Field(default_factory=Review, description="default thresholds of every output field")
    prompt: PromptSpec
    crm: CrmTarget | None = None
    output_topic: str | None = Field(default=None, min_length=1, max_length=249, description="default ai.<name>")
    consumer_group: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        description="the enricher's Kafka consumer group (default crmpilot-enricher-<name>); keep a group's name when "
        "a running service moves to a spec, so it goes on from its committed offsets",
    )
    personal_outputs: tuple[str, ...] = Field(default=(), description="outputs holding personal text")
    hooks: tuple[str, ...] = Field(
        default=(), description="named Python hooks run after the model (crmpilot.enrichments.hooks)"
    )
    local: str | None = Field(
        default=None,
        pattern=NAME,
        description="a registered local method (crmpilot.enrichments.hooks.local_method) that answers every field "
        "on the local model",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in (*self.inputs, *self.outputs):
            if not re.match(NAME, name):
                raise ValueError(f"field name {name!r} must be lower_snake (a-z, 0-9, _)")
        if all(i.context for i in self.inputs.values()):
            raise ValueError("at least one input must not be context: the model needs something to read")
        clash = set(self.inputs) & set(self.outputs)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))}: a name cannot be both an input and an output")
        return self

    @property
    def group(self) -> str:
        """The enricher's default Kafka consumer group."""
        return self.consumer_group or f"crmpilot-enricher-{self.name}"

    @property
    def topic(self) -> str:
        return self.output_topic or f"ai.{self.name}"

    def thresholds(self, field: str) -> Review:
        return self.outputs[field].review or self.review

    @property
    def asked(self) -> dict[str, OutputField]:
        """The outputs a model answers: all but the derived ones."""
        return {name: out for name, out in self.outputs.items() if not out.derived_from}

    @property
    def derived(self) -> dict[str, OutputField]:
        """The outputs hooks derive from others."""
        return {name: out for name, out in self.outputs.items() if out.derived_from}


# -- loading, with lines -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One thing wrong with a spec file, where it is."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class SpecError(Fatal):
    """A spec file that cannot run: every problem with its file and line."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecSource:
    """A parsed spec file's node tree: the line of any location in it."""

    def __init__(self, file: str, root: yaml.Node | None) -> None:
        self.file = file
        self.root = root

    def line(self, loc: Sequence[str | int]) -> int:
        """The 1-based line of ``loc`` (a path of keys and indexes), or of its nearest existing parent."""
        node = self.root
        line = 1 if node is None else node.start_mark.line + 1
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node, line = child
        return line

    def problem(self, loc: Sequence[str | int], reason: str) -> SpecProblem:
        return SpecProblem(self.file, self.line(loc), reason)


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node, int] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if str(key.value) == str(part):
                return value, (key.start_mark.line + 1)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item.start_mark.line + 1
    return None


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[SpecProblem]:
    """Keys given twice in one mapping (YAML keeps the last silently)."""
    problems: list[SpecProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                problems.append(SpecProblem(file, key.start_mark.line + 1, f"{name}: given twice in one mapping"))
            seen.add(name)
            problems += _duplicate_keys(value, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, file)
    return problems


def parse_spec(text: str, file: str = "<spec>") -> tuple[EnrichmentSpec, SpecSource]:
    """A spec from YAML text, with its source (for lines of later checks); raises :class:`SpecError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise SpecError([SpecProblem(file, line, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]) from exc
    src = SpecSource(file, root)
    if doubled := _duplicate_keys(root, file):
        raise SpecError(doubled)
    if not isinstance(data, dict):
        raise SpecError([src.problem((), "a spec is a YAML mapping (name:, source:, inputs:, outputs:, prompt:)")])
    try:
        spec = EnrichmentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([src.problem(_where(e), _reason(e)) for e in exc.errors()]) from exc
    problems = semantic_problems(spec, src)
    if problems:
        raise SpecError(problems)
    return spec, src


def load_spec(path: Path) -> tuple[EnrichmentSpec, SpecSource]:
    """Read and validate one spec file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem(str(path), 1, f"cannot read the file: {exc}")]) from exc
    return parse_spec(text, str(path))


def _yaml_loc(loc: Sequence[str | int]) -> list[str | int]:
    """A pydantic location without the union-member tags it adds after an output or item field's name
    (``outputs.x.enum.values`` -> ``outputs.x.values``); a field itself named like a tag stays."""
    tags = {"enum", "multi_enum", "boolean", "number", "text", "quotes", "items"}
    return [
        p
        for i, p in enumerate(loc)
        if not isinstance(p, str)
        or not (p.startswith("function-") or (p in tags and i >= 2 and loc[i - 2] in ("outputs", "fields")))
    ]


def _where(error: Any) -> list[str | int]:
    loc = _yaml_loc(error["loc"])
    return [*loc, "type"] if error["type"] in ("union_tag_invalid", "union_tag_not_found") else loc


def _reason(error: Any) -> str:
    where = ".".join(str(p) for p in _yaml_loc(error["loc"]))
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if error["type"] == "union_tag_invalid":
        return f"{where}: type must be one of enum, multi_enum, boolean, number, text, quotes, items"
    return f"{where}: {msg}" if where else msg


def semantic_problems(spec: EnrichmentSpec, src: SpecSource) -> list[SpecProblem]:
    """What the types allow but cannot run: unknown placeholders, outputs, inputs, event types or paths."""
    problems: list[SpecProblem] = []
    for _, placeholder, format_spec, conversion in _placeholders(spec.prompt.user, src, problems):
        if placeholder is None:
            continue
        if placeholder not in spec.inputs or conversion or format_spec:
            problems.append(
                src.problem(
                    ("prompt", "user"),
                    "prompt.user: placeholder "
                    f"{{{placeholder}{'!' + conversion if conversion else ''}"
                    f"{':' + format_spec if format_spec else ''}}}"
                    f" is no input (write {{name}} with a name of: {', '.join(spec.inputs)})",
                )
            )
    problems += _event_problems(spec, src)
    if spec.crm is not None:
        own = {f.lower() for f in spec.crm.written_fields}
        if loop := [f for f in spec.source.rerun_on if f.lower() in own]:
            problems.append(
                src.problem(
                    ("source", "rerun_on"),
                    f"source.rerun_on: {', '.join(loop)} is written by this enrichment: its own write would "
                    "run it again",
                )
            )
    if spec.crm is not None:
        for output in spec.crm.fields:
            if output not in spec.outputs:
                problems.append(
                    src.problem(
                        ("crm", "fields", output),
                        f"crm.fields: {output!r} is no output (outputs: {', '.join(spec.outputs)})",
                    )
                )
        for output in spec.crm.confidence_fields:
            if output not in spec.crm.fields:
                problems.append(
                    src.problem(
                        ("crm", "confidence_fields", output),
                        f"crm.confidence_fields: {output!r} is no output written to the CRM (crm.fields: "
                        f"{', '.join(spec.crm.fields)})",
                    )
                )
    for name, out in spec.outputs.items():
        if isinstance(out, TextOutput):
            for source in out.source:
                if source not in spec.inputs:
                    problems.append(
                        src.problem(("outputs", name, "source"), f"outputs.{name}.source: {source!r} is no input")
                    )
            if out.max_sentences > 1 and not out.extractive:
                problems.append(
                    src.problem(
                        ("outputs", name, "max_sentences"),
                        f"outputs.{name}.max_sentences: only an extractive text field is made of input sentences",
                    )
                )
            if out.source and not out.extractive:
                problems.append(
                    src.problem(
                        ("outputs", name, "source"),
                        f"outputs.{name}.source: only an extractive text field has a source",
                    )
                )
    for name in spec.outputs:
        if name == "confidence" or name.startswith("model_"):
            problems.append(
                src.problem(
                    ("outputs", name),
                    f"outputs.{name}: the name is reserved ('confidence' holds every answer's confidences; names "
                    "starting with model_ belong to the output model)",
                )
            )
    for name, out in spec.derived.items():
        at = ("outputs", name, "derived_from")
        if stray := [f for f in out.derived_from if f not in spec.asked]:
            problems.append(
                src.problem(
                    at,
                    f"outputs.{name}.derived_from: {stray[0]!r} is no output the model answers (it derives from "
                    f"those: {', '.join(spec.asked)})",
                )
            )
        if out.local is not None:
            problems.append(src.problem(at, f"outputs.{name}: a derived output has no local rule (a hook sets it)"))
        if not spec.hooks:
            problems.append(src.problem(at, f"outputs.{name}.derived_from: a derived output needs hooks: that set it"))
    if spec.local is not None:
        for name, out in spec.outputs.items():
            if out.local is not None:
                problems.append(
                    src.problem(
                        ("outputs", name, "local"),
                        f"outputs.{name}.local: the spec's local method {spec.local!r} answers every field",
                    )
                )
    if spec.outputs and not spec.asked:
        problems.append(src.problem(("outputs",), "outputs: every output is derived; the model must answer one"))
    for name in spec.personal_outputs:
        if name not in spec.outputs:
            problems.append(src.problem(("personal_outputs",), f"personal_outputs: {name!r} is no output"))
    return problems


def _event_problems(spec: EnrichmentSpec, src: SpecSource) -> list[SpecProblem]:
    """Event types the registry does not know, and paths whose first step no accepted event type has."""
    from crmpilot.events.registry import EVENT_TYPES  # the event contracts: imported at check time only

    problems: list[SpecProblem] = []
    models = []
    for i, event_type in enumerate(spec.source.event_types):
        versions = EVENT_TYPES.get(event_type)
        if versions is None:
            problems.append(
                src.problem(
                    ("source", "event_types", i),
                    f"source.event_types: unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}",
                )
            )
        else:
            models.append((event_type, versions[max(versions)]))
    paths: list[tuple[tuple[str | int, ...], str]] = [(("source", "key"), spec.source.key)]
    paths += [(("inputs", name, "path"), inp.path) for name, inp in spec.inputs.items()]
    wheres = [(("source", "where"), spec.source.where)]
    if spec.crm is not None:
        paths.append((("crm", "record_id"), spec.crm.record_id))
        wheres.append((("crm", "where"), spec.crm.where))
    paths += [((*loc, path), path) for loc, where in wheres for path in where]
    for loc, path in paths:
        first = path.split(".")[0]
        for event_type, model in models:
            if first not in model.model_fields:
                at = ".".join(str(p) for p in loc)
                problems.append(
                    src.problem(
                        loc,
                        f"{at}: {event_type} data has no field {first!r} (it has: {', '.join(model.model_fields)})",
                    )
                )
    for loc, where in wheres:
        for path, allowed in where.items():
            at = f"{'.'.join(map(str, loc))}.{path}"
            for event_type, model in models:
                info = model.model_fields.get(path)
                if info is None:
                    continue  # a fields.X of a record event: any value
                known = _literal_values(info.annotation)
                if known is not None:  # a closed field: named with its values
                    if stray := [v for v in allowed if v not in known]:
                        problems.append(
                            src.problem(
                                (*loc, path),
                                f"{at}: {stray[0]!r} is no value of {event_type} {path} "
                                f"(values: {', '.join(map(str, known))})",
                            )
                        )
                elif wrong := [v for v in allowed if not _holds(info.annotation, v)]:
                    problems.append(
                        src.problem((*loc, path), f"{at}: {wrong[0]!r} is no value {event_type} {path} can hold")
                    )
    return problems


def _holds(annotation: Any, value: Any) -> bool:
    """Whether a field of type ``annotation`` can hold ``value`` (``true`` is no string, ``"x"`` no number)."""
    try:
        TypeAdapter(annotation).validate_python(value, strict=not isinstance(value, int | float))
    except ValidationError:
        return False
    return True


def _literal_values(annotation: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal`` field (``None`` allowed when optional), or ``None`` for any other type."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    args = get_args(annotation)
    literals = [a for a in args if get_origin(a) is Literal]
    if len(literals) == 1 and all(a is type(None) or a in literals for a in args):
        return (*get_args(literals[0]), None)
    return None


def _placeholders(
    template: str, src: SpecSource, problems: list[SpecProblem]
) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.append(src.problem(("prompt", "user"), f"prompt.user: {exc} (write a literal brace as {{{{ or }}}})"))
        return []
