"""Privacy operations on the warehouse: erase one person's data, purge free text past a retention limit.

:func:`erase` (``crmpilot erase --subject``) finds a person by an e-mail address
or a record id (a Contact, Lead, Case… id) and, in one transaction:

1. **finds their rows**: the source events whose contact fields
   (``contact_email``, ``from_address``) hold the address, or that are about the
   record id; the records those events are about (case, e-mail, request ids:
   never account ids, which are companies); every event and result about those
   records or derived from those events (``source_event_id``), the raw result
   events of those results, their CRM audit and feedback rows, the dead-letter
   entries with those keys or at those Kafka positions, the CRM source's
   seen-state of those records, and the response-cache entries with the same
   input hash or naming the subject;
2. **anonymises** raw events, facts, audit, feedback and DLQ rows in place: free
   text and record ids become ``[erased]``, JSON keeps only its categorical and
   technical values (category, priority, scores, tokens, cost, provenance…), and
   ``redacted = 'erased'`` marks the row. Counts, costs, rates and the Kafka
   positions stay, so the ``bi`` views are unchanged, and a replayed event or
   result is still absorbed by its primary key instead of coming back;
3. **deletes** what is disposable: cache entries and ``crm_source_seen`` rows;
4. **scrubs** the literal subject from every text, JSON and text-array column of
   every table in schema ``warehouse`` and the cache schema (another person's
   e-mail that quotes the subject keeps its text, minus the address);
5. **verifies** that no table still contains the subject, else rolls back and
   raises :class:`ErasureIncomplete`; then records the erasure in
   ``warehouse.erasures`` (the SHA-256 of the subject, never the subject).

:func:`purge` (``crmpilot db purge --older-than 30d``) anonymises the free text
of raw events, facts and DLQ rows stored more than N days ago the same way
(``[purged]``, record ids and typed columns kept), deletes cache entries created
before then, and records the purge in ``warehouse.retention_purges``. It keeps
the CRM audit and feedback values: they mirror CRM field values, and
``crm revert`` and the feedback of later human edits need them.

Declared enrichments follow their specs (the registry is an argument of both,
by default :func:`~crmpilot.enrichments.registry.load_registry`): in a
``fact_enrichment`` row (and the raw ``ai.enrichment.completed`` event) of
enrichment X only the outputs in X's ``personal_outputs`` and its text and
quotes outputs are replaced; its enum (a declared value), boolean and number
outputs are kept, so ``bi.<name>`` keeps them. In a raw ``crm.record.*`` event,
the fields that the specs reading it (topic and event type) declare as personal
inputs are replaced, and so is every string field none of them reads; the
non-personal inputs they read are kept. Without a spec (an unknown enrichment,
a topic no spec reads) every string is free text, as before: safe by default.
The report names those rows' enrichments and topics.

Both are idempotent: a second run finds nothing left to do. A dry run reports
the same counts and changes nothing. See docs/privacy.md.

Matching: an e-mail address matches case-insensitively, a record id exactly,
and both only as a whole token (``ann@example.com`` does not match
``joann@example.com``; ``003A1`` does not match ``003A12``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..enrichments.pipeline import EVENT_TYPE as ENRICHMENT_EVENT_TYPE
from ..enrichments.registry import Registry, load_registry
from ..enrichments.spec import BooleanOutput, EnrichmentSpec, EnumOutput, MultiEnumOutput, NumberOutput
from .errors import (
    ErasureIncomplete,
    InvalidRetention,
    InvalidSubject,
    PrivacyOperationFailed,
    WarehouseNotMigrated,
    WarehouseUnavailable,
)
from .migrator import require_current

__all__ = [
    "ERASED",
    "PURGED",
    "RECORD_EVENT_TYPES",
    "REDACTED_TABLES",
    "PrivacyReport",
    "RetentionSettings",
    "Subject",
    "TableCount",
    "TableSpec",
    "erase",
    "output_kept",
    "parse_retention",
    "purge",
    "redact_enrichment_outputs",
    "redact_enrichment_result",
    "redact_json",
    "redact_record_event",
    "redact_row",
]

ERASED = "[erased]"
PURGED = "[purged]"
_MARKERS = (ERASED, PURGED)
_CHUNK = 1_000

# JSON paths (keys joined by '.', list positions left out) whose string values are
# categorical or technical, kept by both erase and purge. A path keeps its subtree.
_KEEP_PATHS = frozenset({
    # source events
    "origin", "changed_fields", "last_modified", "received_at", "kind", "currency", "sobject",
    # results
    "result_id", "task", "review", "provenance", "skipped.reason", "category", "priority", "sentiment",
    "language", "queue", "intent", "urgency", "band", "risk_flags", "entities.kind", "factors.name",
    "factors.direction",
    # declared enrichments' results (their `outputs` follow the spec: redact_enrichment_result)
    "field_review", "review_reasons",
})  # fmt: skip
# Record ids in JSON: erased by an erasure, kept by a purge. Account ids are companies, not people.
_ID_PATHS = frozenset({"case_id", "email_id", "request_id", "account_id", "record_id"})
_RECORD_ID_KEYS = (
    "case_id",
    "email_id",
    "request_id",
    "record_id",  # RecordChanged (crm.record.*) and declared enrichments' results
)  # what links a person's events and results
_CONTACT_KEYS = ("contact_email", "from_address")  # whose a source event is
RECORD_EVENT_TYPES = frozenset({"crm.record.created", "crm.record.updated"})
"""The generic source events of declared enrichments (``RecordChanged``): their fields follow the specs."""


# --- the subject -----------------------------------------------------------------------

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{4,79}$")
# Token boundaries. A JSON string escape (\n, \t…) right before the subject is a boundary too.
_EMAIL_BEFORE = r"(?:^|(?<=[^A-Za-z0-9._%+'-])|(?<=\\[nrtbf]))"
_EMAIL_AFTER = r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
_ID_BEFORE = r"(?:^|(?<=[^A-Za-z0-9_-])|(?<=\\[nrtbf]))"
_ID_AFTER = r"(?![A-Za-z0-9_-])"


@dataclass(frozen=True, slots=True)
class Subject:
    """The person to erase: an e-mail address (matched case-insensitively) or a record id (matched exactly)."""

    value: str
    kind: Literal["email", "id"]

    @classmethod
    def parse(cls, raw: str) -> Subject:
        """Validate and normalise (an address is lower-cased); raise :class:`InvalidSubject` otherwise."""
        value = raw.strip()
        if "@" in value:
            if not _EMAIL.match(value) or len(value) > 254:
                raise InvalidSubject(f"{value!r} is not an e-mail address (name@domain.tld)")
            return cls(value.lower(), "email")
        if not _ID.match(value) or not any(c.isalpha() for c in value):
            raise InvalidSubject(
                f"{value!r} is neither an e-mail address nor a record id (5 to 80 letters, digits, '_', '.', ':', '-', "
                "starting with a letter or digit and holding at least one letter)"
            )
        return cls(value, "id")

    @property
    def sha256(self) -> str:
        """What ``warehouse.erasures`` stores instead of the subject."""
        return hashlib.sha256(self.value.encode("utf-8")).hexdigest()

    @property
    def pattern(self) -> str:
        """A regular expression for the subject as a whole token, valid in Python and in PostgreSQL."""
        escaped = "".join(c if c.isalnum() else "\\" + c for c in self.value)
        if self.kind == "email":
            return _EMAIL_BEFORE + escaped + _EMAIL_AFTER
        return _ID_BEFORE + escaped + _ID_AFTER

    @property
    def case_insensitive(self) -> bool:
        return self.kind == "email"

    def _regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE if self.case_insensitive else 0)

    def found_in(self, text: str) -> bool:
        return self._regex().search(text) is not None

    def replace_in(self, text: str, marker: str = ERASED) -> str:
        return self._regex().sub(marker, text)


# --- anonymising values (pure) -------------------------------------------------------------


def redact_json(doc: Any, *, marker: str, keep_ids: bool, subject: Subject | None = None) -> Any:
    """``doc`` with every free-text string replaced by ``marker``.

    Kept: numbers, booleans, nulls, object keys, the strings at categorical or
    technical paths (``category``, ``provenance``…), and record ids when
    ``keep_ids``. ``subject``, if given, is also replaced inside the kept strings.
    """
    return _walk(doc, (), marker, keep_ids, subject)


def _walk(
    value: Any,
    path: tuple[str, ...],
    marker: str,
    keep_ids: bool,
    subject: Subject | None,
    decided: Mapping[tuple[str, ...], bool] | None = None,
) -> Any:
    """``decided``: paths whose whole subtree is kept (True) or replaced (False), before the generic rules."""
    if decided and path in decided:
        return _keep(value, marker, subject) if decided[path] else _blank(value, marker)
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), marker, keep_ids, subject, decided) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, path, marker, keep_ids, subject, decided) for v in value]
    if not isinstance(value, str):
        return value
    if not _kept(path, keep_ids):
        return marker
    return subject.replace_in(value, marker) if subject is not None else value


def _kept(path: tuple[str, ...], keep_ids: bool) -> bool:
    if keep_ids and ".".join(path) in _ID_PATHS:
        return True
    return any(".".join(path[:i]) in _KEEP_PATHS for i in range(1, len(path) + 1))


def _blank(value: Any, marker: str) -> Any:
    """Every string of ``value`` (keys aside) replaced by ``marker``; numbers, booleans, nulls and shape kept."""
    if isinstance(value, dict):
        return {k: _blank(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v, marker) for v in value]
    return marker if isinstance(value, str) else value


def _keep(value: Any, marker: str, subject: Subject | None) -> Any:
    """``value`` kept, minus the subject inside its strings."""
    if subject is None:
        return value
    if isinstance(value, dict):
        return {k: _keep(v, marker, subject) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep(v, marker, subject) for v in value]
    return subject.replace_in(value, marker) if isinstance(value, str) else value


# --- declared enrichments (pure) -------------------------------------------------------------


def output_kept(spec: EnrichmentSpec | None, name: str, value: Any) -> bool:
    """Whether erase and purge keep the value of output ``name`` of a result of ``spec``.

    Kept: a declared enum value, a boolean of a boolean output, a number of a
    number output, unless the output is in ``personal_outputs``. Replaced: text
    and quotes outputs (text can quote a personal input), personal outputs, an
    output the spec does not declare, a value of another type (written by an
    older version of the spec), and every output when ``spec`` is None: an
    enrichment without a registered spec is all free text, safe by default.
    """
    if spec is None or name in spec.personal_outputs:
        return False
    out = spec.outputs.get(name)
    if isinstance(out, EnumOutput):
        return isinstance(value, str) and value in out.values
    if isinstance(out, MultiEnumOutput):
        return isinstance(value, list | tuple) and all(isinstance(v, str) and v in out.values for v in value)
    if isinstance(out, BooleanOutput):
        return isinstance(value, bool)
    if isinstance(out, NumberOutput):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


def redact_enrichment_outputs(
    outputs: Any, spec: EnrichmentSpec | None, *, marker: str, subject: Subject | None = None
) -> Any:
    """``fact_enrichment.outputs`` (``{output: value}``) of a result of ``spec``, anonymised.

    The values :func:`output_kept` keeps stay (minus ``subject``); every string
    of the others becomes ``marker`` (numbers, booleans, nulls and the shape of
    quotes stay). ``spec`` None (no spec registered for the row's enrichment):
    every output is treated as free text, as before enrichments were declared.
    """
    if not isinstance(outputs, dict):
        return _blank(outputs, marker)
    return {
        name: _keep(value, marker, subject) if output_kept(spec, name, value) else _blank(value, marker)
        for name, value in outputs.items()
    }


def redact_enrichment_result(
    doc: Any, spec: EnrichmentSpec | None, *, marker: str, keep_ids: bool, subject: Subject | None = None
) -> Any:
    """An ``EnrichmentResult`` as JSON (``fact_enrichment.result``, the raw ``ai.enrichment.completed`` payload),
    anonymised.

    ``outputs`` as :func:`redact_enrichment_outputs` (``spec`` None: all free
    text); the rest as :func:`redact_json`: provenance, review, field reviews,
    review reasons, confidences and counts stay, ``record_id`` is an id (kept by
    a purge), ``grounding_failures`` and a skip's detail are free text.
    """
    if not isinstance(doc, dict):
        return redact_json(doc, marker=marker, keep_ids=keep_ids, subject=subject)
    return {
        k: redact_enrichment_outputs(v, spec, marker=marker, subject=subject)
        if k == "outputs"
        else _walk(v, (k,), marker, keep_ids, subject)
        for k, v in doc.items()
    }


def redact_record_event(
    doc: Any, specs: Iterable[EnrichmentSpec], *, marker: str, keep_ids: bool, subject: Subject | None = None
) -> Any:
    """A ``RecordChanged`` payload (``crm.record.*``), anonymised by the inputs of ``specs``, the specs that read it.

    The value at a personal input's path of any of them is replaced (whatever
    another spec says); the value at a non-personal input's path is kept (minus
    ``subject``); every other string, among them every field value no spec
    reads, follows :func:`redact_json`: field values are free text, ``sobject``,
    ``changed_fields`` and ``last_modified`` stay, ``record_id`` is an id. No
    specs: every string field value is replaced.
    """
    inputs = [i for spec in specs for i in spec.inputs.values()]
    personal = {tuple(i.path.split(".")) for i in inputs if i.personal}
    # a kept path above a personal one (``fields`` and ``fields.Description``) is walked into instead
    kept = {tuple(i.path.split(".")) for i in inputs if not i.personal}
    decided = {p: True for p in kept if not any(q[: len(p)] == p for q in personal)}
    decided.update(dict.fromkeys(personal, False))
    return _walk(doc, (), marker, keep_ids, subject, decided)


@dataclass(frozen=True, slots=True)
class _Declared:
    """The enrichment specs as the privacy operations look them up: by name, and by the events they read."""

    by_name: Mapping[str, EnrichmentSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry | Iterable[EnrichmentSpec]) -> _Declared:
        if isinstance(registry, _Declared):
            return registry
        return cls({spec.name: spec for spec in registry})

    def __iter__(self) -> Iterator[EnrichmentSpec]:
        return iter(self.by_name.values())

    def spec(self, task: Any) -> EnrichmentSpec | None:
        return self.by_name.get(task) if isinstance(task, str) else None

    def reading(self, topic: Any, event_type: Any) -> tuple[EnrichmentSpec, ...]:
        """The specs that read events of this type from this topic."""
        return tuple(
            s for s in self.by_name.values() if event_type in s.source.event_types and topic in s.source.topics
        )


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A warehouse table the privacy operations rewrite, and the role of its personal columns."""

    name: str
    key: str
    stored_at: str
    """When the row was stored: the retention clock."""
    json: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    """Free text: replaced whole."""
    text_arrays: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    """Record ids of the person's records: replaced by an erasure, kept by a purge."""
    purged: bool = True
    """Whether the retention purge rewrites this table (erasure always does)."""
    context: tuple[str, ...] = ()
    """Read to choose how a row's JSON is anonymised (its event type, its enrichment), never rewritten."""

    @property
    def columns(self) -> tuple[str, ...]:
        return self.json + self.text + self.text_arrays + self.ids


REDACTED_TABLES: tuple[TableSpec, ...] = (
    TableSpec("raw_events", "event_id", "received_at", json=("payload",), ids=("subject",), context=("type", "topic")),
    TableSpec(
        "fact_ticket_classification",
        "result_id",
        "written_at",
        json=("result",),
        text=("escalation_reason",),
        ids=("subject", "case_id"),
    ),
    TableSpec(
        "fact_email_summary",
        "result_id",
        "written_at",
        json=("result",),
        text=("summary",),
        text_arrays=("grounding_failures",),
        ids=("subject", "email_id", "case_id"),
    ),
    # Declared enrichments: which outputs are kept is read from the row's spec (redact_enrichment_outputs);
    # a row whose enrichment has no spec registered has every string output replaced.
    TableSpec(
        "fact_enrichment",
        "result_id",
        "written_at",
        json=("result", "outputs"),
        text_arrays=("grounding_failures",),
        ids=("subject", "record_id"),
        context=("task",),
    ),
    # CRM field values: what the CRM held and holds. A purge keeps them (`crm revert` restores before
    # values, and feedback compares a person's edit with what we wrote); an erasure does not.
    TableSpec(
        "crm_write_audit",
        "id",
        "applied_at",
        text=("before_value", "after_value"),
        ids=("record_id",),
        purged=False,
    ),
    TableSpec(
        "feedback",
        "event_id",
        "recorded_at",
        text=("ai_value", "human_value"),
        ids=("record_id",),
        purged=False,
    ),
    TableSpec("dlq_log", "id", "failed_at", text=("error_message",), ids=("message_key",)),
)
"""Tables whose rows are anonymised in place (``redacted`` says why). ``crm_source_seen`` and the
response cache are deleted from instead; ``kpi_window``, ``crm_source_watermark`` and the
bookkeeping tables hold no personal data (the final scan checks every table anyway)."""
_SPECS = {spec.name: spec for spec in REDACTED_TABLES}
_FACT_SPECS = tuple(spec for spec in REDACTED_TABLES if spec.name.startswith("fact_"))


def redact_row(
    spec: TableSpec,
    row: Mapping[str, Any],
    *,
    marker: str,
    keep_ids: bool,
    subject: Subject | None = None,
    enrichments: Registry | Iterable[EnrichmentSpec] = (),
) -> dict[str, Any]:
    """The anonymised values of ``spec.columns`` (those without ids when ``keep_ids``). NULLs stay NULL.

    ``row`` holds ``spec.columns`` and ``spec.context``. ``enrichments``: the
    specs that decide the JSON of ``fact_enrichment`` rows, of raw
    ``ai.enrichment.completed`` and of raw ``crm.record.*`` events; a row none of
    them covers (the default: none) has all its strings treated as free text.
    """
    declared = _Declared.of(enrichments)
    out: dict[str, Any] = {}
    for column in spec.json:
        value = row[column]
        out[column] = (
            None
            if value is None
            else _redact_json_column(
                spec.name, column, value, row, declared, marker=marker, keep_ids=keep_ids, subject=subject
            )
        )
    for column in spec.text:
        out[column] = None if row[column] is None else marker
    for column in spec.text_arrays:
        out[column] = None if row[column] is None else [marker] * len(row[column])
    if not keep_ids:
        for column in spec.ids:
            out[column] = None if row[column] is None else marker
    return out


def _redact_json_column(
    table: str,
    column: str,
    value: Any,
    row: Mapping[str, Any],
    declared: _Declared,
    *,
    marker: str,
    keep_ids: bool,
    subject: Subject | None,
) -> Any:
    """One JSON value of a row, by the rule of its table, event type or enrichment."""
    if table == "fact_enrichment" and column == "outputs":
        return redact_enrichment_outputs(value, declared.spec(row.get("task")), marker=marker, subject=subject)
    if table == "fact_enrichment" and column == "result":
        spec = declared.spec(row.get("task"))
        return redact_enrichment_result(value, spec, marker=marker, keep_ids=keep_ids, subject=subject)
    if table == "raw_events" and column == "payload":
        event_type = row.get("type")
        if event_type == ENRICHMENT_EVENT_TYPE and isinstance(value, dict):
            spec = declared.spec(value.get("task"))
            return redact_enrichment_result(value, spec, marker=marker, keep_ids=keep_ids, subject=subject)
        if event_type in RECORD_EVENT_TYPES:
            specs = declared.reading(row.get("topic"), event_type)
            return redact_record_event(value, specs, marker=marker, keep_ids=keep_ids, subject=subject)
    return redact_json(value, marker=marker, keep_ids=keep_ids, subject=subject)


# --- reports ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TableCount:
    anonymised: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.anonymised + self.deleted


@dataclass(slots=True)
class PrivacyReport:
    """What an erasure or purge touched (or, for a dry run, would touch), per ``schema.table``."""

    operation: Literal["erase", "purge"]
    dry_run: bool
    tables: dict[str, TableCount] = field(default_factory=dict)
    record_id: int | None = None
    """The ``warehouse.erasures`` / ``retention_purges`` row (None for a dry run)."""
    subject_hash: str | None = None
    cutoff: datetime | None = None
    enrichments_without_spec: set[str] = field(default_factory=set)
    """Enrichments of the rows touched that no registered spec declares: all their outputs were free text."""
    record_topics_without_spec: set[str] = field(default_factory=set)
    """Topics of the ``crm.record.*`` events touched that no spec reads: all their string fields were free text."""

    def count(self, table: str) -> TableCount:
        return self.tables.setdefault(table, TableCount())

    @property
    def total(self) -> int:
        return sum(c.total for c in self.tables.values())

    def rows_touched(self) -> dict[str, dict[str, int]]:
        return {t: {"anonymised": c.anonymised, "deleted": c.deleted} for t, c in sorted(self.tables.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "dry_run": self.dry_run,
            "record_id": self.record_id,
            "subject_sha256": self.subject_hash,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "total_rows": self.total,
            "tables": self.rows_touched(),
            "enrichments_without_spec": sorted(self.enrichments_without_spec),
            "record_topics_without_spec": sorted(self.record_topics_without_spec),
        }


# --- retention settings ----------------------------------------------------------------------


class RetentionSettings(BaseSettings):
    """``CRMPILOT_RETENTION_DAYS``: the default of ``crmpilot db purge --older-than``."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_", frozen=True, extra="ignore")

    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="keep raw text this many days; unset: no default",
    )


_DAYS = re.compile(r"^(\d+)\s*d?$")


def parse_retention(value: str | int) -> int:
    """Whole days from ``30d`` or ``30`` (at least 1); raise :class:`InvalidRetention` otherwise."""
    match = _DAYS.match(str(value).strip().lower())
    if match is None:
        raise InvalidRetention(f"{value!r} is not a number of days (e.g. 30d)")
    days = int(match[1])
    if days < 1:
        raise InvalidRetention("the retention period must be at least 1 day")
    return days


# --- erase -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    """The keys of the subject's rows, per table."""

    keys: dict[str, list[Any]] = field(default_factory=dict)
    record_ids: set[str] = field(default_factory=set)
    input_hashes: set[str] = field(default_factory=set)


def erase(
    conn: psycopg.Connection[Any],
    subject: Subject | str,
    *,
    operator: str,
    dry_run: bool = False,
    cache_schema: str = "llm",
    cache_conn: psycopg.Connection[Any] | None = None,
    registry: Registry | Iterable[EnrichmentSpec] | None = None,
) -> PrivacyReport:
    """Erase ``subject`` from the warehouse and the response cache (see the module docstring).

    ``cache_conn``: the database of the response cache when it is not the
    warehouse's (``CRMPILOT_LLM_DATABASE_URL``); its part runs in its own
    transaction, committed just before the warehouse's. ``conn`` must be idle.
    ``registry``: the enrichment specs that say which outputs and event fields
    are personal (default: :func:`load_registry`, read at each call). A
    ``fact_enrichment`` row whose enrichment has no spec there has every string
    output erased (enum values too), and a ``crm.record.*`` event no spec reads
    every string field: safe by default; the report names them.
    """
    subject = subject if isinstance(subject, Subject) else Subject.parse(subject)
    declared = _Declared.of(load_registry() if registry is None else registry)
    report = PrivacyReport("erase", dry_run, subject_hash=subject.sha256)
    for spec in REDACTED_TABLES:
        report.count(f"warehouse.{spec.name}")
    report.count("warehouse.crm_source_seen")
    with _translated():
        require_current(conn)
        with conn.transaction() as tx:
            found = _find(conn, subject)
            for spec in REDACTED_TABLES:
                keys = found.keys.get(spec.name, [])
                key = sql.SQL("{} = any(%(keys)s)").format(sql.Identifier(spec.key))
                _note_without_spec(conn, spec, key, {"keys": keys}, declared, report)
                report.count(f"warehouse.{spec.name}").anonymised += _rewrite(
                    conn,
                    spec,
                    keys,
                    marker=ERASED,
                    keep_ids=False,
                    subject=subject,
                    reason="erased",
                    declared=declared,
                )
            report.count("warehouse.crm_source_seen").deleted += conn.execute(
                sql.SQL(
                    "delete from warehouse.crm_source_seen s where s::text {} %(p)s or s.record_id = any(%(k)s)"
                ).format(_op(subject)),
                {"p": subject.pattern, "k": sorted(found.record_ids)},
            ).rowcount
            if cache_conn is None:
                _erase_cache(conn, cache_schema, subject, found.input_hashes, report)
            _scrub_everywhere(
                conn,
                ["warehouse"] + ([cache_schema] if cache_conn is None else []),
                subject,
                found,
                report,
            )
            if cache_conn is not None:
                # Committed before the warehouse: if it fails, the warehouse rolls back too and a
                # re-run still finds the input hashes that key the cache entries.
                with cache_conn.transaction() as ctx:
                    _erase_cache(cache_conn, cache_schema, subject, found.input_hashes, report)
                    _scrub_everywhere(cache_conn, [cache_schema], subject, _Found(), report)
                    if dry_run:
                        raise psycopg.Rollback(ctx)
            if not dry_run:
                report.record_id = _record(
                    conn,
                    "insert into warehouse.erasures (subject_hash, subject_kind, operator, rows_touched, total_rows)"
                    " values (%s, %s, %s, %s, %s) returning id",
                    (
                        subject.sha256,
                        subject.kind,
                        operator,
                        Jsonb(report.rows_touched()),
                        report.total,
                    ),
                )
            if dry_run:  # the counts are exact: everything ran, nothing stays
                raise psycopg.Rollback(tx)
    return report


def _op(subject: Subject) -> sql.SQL:
    return sql.SQL("~*" if subject.case_insensitive else "~")


def _find(conn: psycopg.Connection[Any], subject: Subject) -> _Found:
    op = _op(subject)
    p = subject.pattern
    found = _Found()

    def ids(values: Sequence[Any]) -> None:
        found.record_ids.update(v for v in values if isinstance(v, str) and v and v not in _MARKERS)

    # 1. the person's own records: the events whose contact fields hold the address
    #    (or that are about the record id), and the record ids those events are about
    if subject.kind == "email":
        owned = sql.SQL(" or ").join(
            sql.SQL("r.payload->>{} {} %(p)s").format(sql.Literal(key), op) for key in _CONTACT_KEYS
        )
    else:
        found.record_ids.add(subject.value)
        owned = sql.SQL("r.subject = %(s)s or {}").format(
            sql.SQL(" or ").join(sql.SQL("r.payload->>{} = %(s)s").format(sql.Literal(key)) for key in _RECORD_ID_KEYS)
        )
    for row in conn.execute(
        sql.SQL("select subject, {} from warehouse.raw_events r where {}").format(
            sql.SQL(", ").join(sql.SQL("payload->>{}").format(sql.Literal(key)) for key in _RECORD_ID_KEYS),
            owned,
        ),
        {"p": p, "s": subject.value},
    ).fetchall():
        ids(row)
    k = sorted(found.record_ids)

    # 2. the events about those records
    id_match = sql.SQL(" or ").join(
        sql.SQL("r.payload->>{} = any(%(k)s)").format(sql.Literal(key)) for key in _RECORD_ID_KEYS
    )
    events = conn.execute(
        sql.SQL(
            "select event_id, topic, kafka_partition, kafka_offset from warehouse.raw_events r"
            " where ({}) or r.subject = any(%(k)s) or {}"
        ).format(owned, id_match),
        {"p": p, "s": subject.value, "k": k},
    ).fetchall()
    event_ids = {row[0] for row in events}
    positions = {tuple(row[1:]) for row in events}

    # 3. the results made from those events or about those records
    result_ids: set[str] = set()
    for spec in _FACT_SPECS:
        linked = sql.SQL(" or ").join(sql.SQL("f.{} = any(%(k)s)").format(sql.Identifier(c)) for c in spec.ids)
        rows = conn.execute(
            sql.SQL(
                "select result_id, input_hash, result_topic, result_partition, result_offset from {} f"
                " where f.source_event_id = any(%(e)s) or {}"
                # a result naming the subject whose source event the warehouse never stored
                " or (f::text {} %(p)s and not exists"
                " (select 1 from warehouse.raw_events r where r.event_id = f.source_event_id))"
            ).format(sql.Identifier("warehouse", spec.name), linked, op),
            {"p": p, "k": k, "e": sorted(event_ids)},
        ).fetchall()
        found.keys[spec.name] = [row[0] for row in rows]
        result_ids.update(row[0] for row in rows)
        found.input_hashes.update(row[1] for row in rows)
        positions.update(tuple(row[2:]) for row in rows)
    r = sorted(result_ids)

    # 4. the raw result events of those results
    for row in conn.execute(
        "select event_id, topic, kafka_partition, kafka_offset from warehouse.raw_events"
        " where payload->>'result_id' = any(%s)",
        (r,),
    ).fetchall():
        event_ids.add(row[0])
        positions.add(tuple(row[1:]))
    found.keys["raw_events"] = sorted(event_ids)

    # 5. what the CRM writer and source, and the dead-letter log, recorded about them
    for name in ("crm_write_audit", "feedback"):
        found.keys[name] = [
            row[0]
            for row in conn.execute(
                sql.SQL("select {} from {} t where t.result_id = any(%(r)s) or t.record_id = any(%(k)s)").format(
                    sql.Identifier(_SPECS[name].key), sql.Identifier("warehouse", name)
                ),
                {"r": r, "k": k},
            ).fetchall()
        ]
    ordered = sorted(positions, key=lambda pos: (str(pos[0]), int(pos[1]), int(pos[2])))
    found.keys["dlq_log"] = [
        row[0]
        for row in conn.execute(
            sql.SQL(
                "select id from warehouse.dlq_log d where d.message_key = any(%(k)s)"
                " or (d.topic, d.kafka_partition, d.kafka_offset) in"
                " (select * from unnest(%(t)s::text[], %(pa)s::int[], %(o)s::bigint[]))"
            ),
            {
                "k": k,
                "t": [x[0] for x in ordered],
                "pa": [x[1] for x in ordered],
                "o": [x[2] for x in ordered],
            },
        ).fetchall()
    ]
    return found


def _erase_cache(
    conn: psycopg.Connection[Any],
    schema: str,
    subject: Subject,
    input_hashes: set[str],
    report: PrivacyReport,
) -> None:
    table = _cache_table(conn, schema)
    if table is None:
        return
    report.count(f"{schema}.llm_cache").deleted += conn.execute(
        sql.SQL("delete from {} c where c::text {} %s or c.input_hash = any(%s)").format(table, _op(subject)),
        (subject.pattern, sorted(input_hashes)),
    ).rowcount


def _cache_table(conn: psycopg.Connection[Any], schema: str) -> sql.Identifier | None:
    row = conn.execute("select to_regclass(format('%%I.llm_cache', %s::text)) is not null", (schema,)).fetchone()
    return sql.Identifier(schema, "llm_cache") if row and row[0] else None


# --- rewriting rows -------------------------------------------------------------------------


def _rewrite(
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    keys: Sequence[Any],
    *,
    marker: str,
    keep_ids: bool,
    subject: Subject | None,
    reason: Literal["erased", "purged"],
    declared: _Declared,
) -> int:
    """Anonymise the rows of ``spec`` with these keys; returns how many."""
    if not keys:
        return 0
    columns = [c for c in spec.columns if not (keep_ids and c in spec.ids)]
    read = [*columns, *(c for c in spec.context if c not in columns)]
    table = sql.Identifier("warehouse", spec.name)
    key = sql.Identifier(spec.key)
    select = sql.SQL("select {}, {} from {} where {} = any(%s)").format(
        key, sql.SQL(", ").join(map(sql.Identifier, read)), table, key
    )
    update = sql.SQL("update {} set {}, redacted = %s, redacted_at = now() where {} = %s").format(
        table,
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns),
        key,
    )
    done = 0
    for start in range(0, len(keys), _CHUNK):
        rows = conn.execute(select, (list(keys[start : start + _CHUNK]),)).fetchall()
        params = []
        for row in rows:
            values = redact_row(
                spec,
                dict(zip(read, row[1:], strict=True)),
                marker=marker,
                keep_ids=keep_ids,
                subject=subject,
                enrichments=declared,
            )
            params.append([*(_adapt(spec, c, values[c]) for c in columns), reason, row[0]])
        if params:
            with conn.cursor() as cur:
                cur.executemany(update, params)
        done += len(params)
    return done


def _adapt(spec: TableSpec, column: str, value: Any) -> Any:
    return Jsonb(value) if column in spec.json and value is not None else value


def _note_without_spec(
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    where: sql.Composable,
    params: Mapping[str, Any],
    declared: _Declared,
    report: PrivacyReport,
) -> None:
    """Add to ``report`` the enrichments and record-event topics of the rows ``where`` selects that no spec covers."""
    if spec.name == "fact_enrichment":
        rows = conn.execute(
            sql.SQL("select distinct task from warehouse.fact_enrichment where {}").format(where), params
        ).fetchall()
        report.enrichments_without_spec.update(t for (t,) in rows if declared.spec(t) is None)
    elif spec.name == "raw_events":
        rows = conn.execute(
            sql.SQL(
                "select distinct type, topic, case when type = %(enrichment)s then payload->>'task' end"
                " from warehouse.raw_events where (type = %(enrichment)s or type = any(%(records)s)) and ({})"
            ).format(where),
            {**params, "enrichment": ENRICHMENT_EVENT_TYPE, "records": sorted(RECORD_EVENT_TYPES)},
        ).fetchall()
        for event_type, topic, task in rows:
            if event_type == ENRICHMENT_EVENT_TYPE:
                if declared.spec(task) is None:
                    report.enrichments_without_spec.add(str(task))
            elif not declared.reading(topic, event_type):
                report.record_topics_without_spec.add(topic)


# --- the final scrub and check ---------------------------------------------------------------


def _text_columns(
    conn: psycopg.Connection[Any], schemas: Sequence[str]
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Per base table of ``schemas``: its columns that can hold text, as (name, 'text' | 'json' | 'jsonb' | 'array')."""
    rows = conn.execute(
        """select c.table_schema, c.table_name, c.column_name,
                  case when c.data_type in ('json', 'jsonb') then c.data_type
                       when c.data_type = 'ARRAY' then 'array' else 'text' end
             from information_schema.columns c
             join information_schema.tables t using (table_schema, table_name)
            where t.table_type = 'BASE TABLE' and c.table_schema = any(%s)
              and (c.data_type in ('text', 'character varying', 'json', 'jsonb')
                   or (c.data_type = 'ARRAY' and c.udt_name in ('_text', '_varchar')))
            order by 1, 2, c.ordinal_position""",
        (list(schemas),),
    ).fetchall()
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in rows:
        out.setdefault((schema, table), []).append((column, kind))
    return out


def _as_text(column: str, kind: str) -> sql.Composable:
    ident = sql.Identifier(column)
    if kind == "array":
        return sql.SQL("array_to_string({}, chr(31))").format(ident)
    if kind in ("json", "jsonb"):
        return sql.SQL("{}::text").format(ident)
    return ident


def _scrubbed(column: str, kind: str) -> sql.Composable:
    ident = sql.Identifier(column)
    replace = sql.SQL("regexp_replace({}, %(p)s, %(m)s, %(f)s)")
    if kind == "array":
        return sql.SQL(
            "coalesce((select array_agg(regexp_replace(x, %(p)s, %(m)s, %(f)s) order by n)"
            " from unnest({}) with ordinality as u(x, n)), {})"
        ).format(ident, ident)
    if kind in ("json", "jsonb"):
        return sql.SQL("{}::{}").format(replace.format(sql.SQL("{}::text").format(ident)), sql.SQL(kind))
    return replace.format(ident)


def _scrub_everywhere(
    conn: psycopg.Connection[Any],
    schemas: Sequence[str],
    subject: Subject,
    found: _Found,
    report: PrivacyReport,
) -> None:
    """Replace the subject in every text column of every table of ``schemas``, then check none is left."""
    params = {
        "p": subject.pattern,
        "m": ERASED,
        "f": "gi" if subject.case_insensitive else "g",
    }
    op = _op(subject)
    tables = _text_columns(conn, schemas)
    for (schema, table), columns in tables.items():
        hit = sql.SQL(" or ").join(sql.SQL("{} {} %(p)s").format(_as_text(c, k), op) for c, k in columns)
        assign = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), _scrubbed(c, k)) for c, k in columns)
        target = sql.Identifier(schema, table)
        spec = _SPECS.get(table) if schema == "warehouse" else None
        touched = found.keys.get(table, []) if spec is not None else []
        if spec is not None and touched:  # rows already counted as anonymised: scrub them, count the others
            key = sql.Identifier(spec.key)
            conn.execute(
                sql.SQL("update {} set {} where ({}) and {} = any(%(t)s)").format(target, assign, hit, key),
                params | {"t": touched},
            )
            counted = sql.SQL("update {} set {} where ({}) and not ({} = any(%(t)s))").format(target, assign, hit, key)
            scrubbed = conn.execute(counted, params | {"t": touched}).rowcount
        else:
            scrubbed = conn.execute(sql.SQL("update {} set {} where {}").format(target, assign, hit), params).rowcount
        if scrubbed:
            report.count(f"{schema}.{table}").anonymised += scrubbed
    left = []
    for (schema, table), columns in tables.items():
        hit = sql.SQL(" or ").join(sql.SQL("{} {} %(p)s").format(_as_text(c, k), op) for c, k in columns)
        row = conn.execute(
            sql.SQL("select count(*) from {} where {}").format(sql.Identifier(schema, table), hit),
            params,
        ).fetchone()
        if row and row[0]:
            left.append(f"{schema}.{table} ({row[0]} rows)")
    if left:
        raise ErasureIncomplete(f"the subject is still found in {', '.join(left)}; nothing was erased")


def _record(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _update_record(conn: psycopg.Connection[Any], table: str, report: PrivacyReport) -> None:
    conn.execute(
        sql.SQL("update {} set rows_touched = %s, total_rows = %s where id = %s").format(
            sql.Identifier("warehouse", table)
        ),
        (Jsonb(report.rows_touched()), report.total, report.record_id),
    )


# --- purge -----------------------------------------------------------------------------------


def purge(
    conn: psycopg.Connection[Any],
    older_than_days: int,
    *,
    operator: str,
    dry_run: bool = False,
    now: datetime | None = None,
    cache_schema: str = "llm",
    cache_conn: psycopg.Connection[Any] | None = None,
    registry: Registry | Iterable[EnrichmentSpec] | None = None,
) -> PrivacyReport:
    """Anonymise the free text of rows stored before ``now - older_than_days`` and delete older cache entries.

    Rows already redacted (erased or purged) are left alone, so a second run
    touches nothing. A dry run counts the rows and changes nothing.
    ``registry``: the enrichment specs that say which outputs and event fields
    are personal (default: :func:`load_registry`, read at each call). A
    ``fact_enrichment`` row whose enrichment has no spec there has every string
    output purged (enum values too), and a ``crm.record.*`` event no spec reads
    every string field: safe by default; the report names them.
    """
    days = parse_retention(older_than_days)
    declared = _Declared.of(load_registry() if registry is None else registry)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    report = PrivacyReport("purge", dry_run, cutoff=cutoff)
    with _translated():
        require_current(conn)
        with conn.transaction():
            for spec in (s for s in REDACTED_TABLES if s.purged):
                due = sql.SQL("redacted is null and {} < %(cutoff)s").format(sql.Identifier(spec.stored_at))
                keys = [
                    row[0]
                    for row in conn.execute(
                        sql.SQL("select {} from {} where {} order by 1").format(
                            sql.Identifier(spec.key),
                            sql.Identifier("warehouse", spec.name),
                            due,
                        ),
                        {"cutoff": cutoff},
                    ).fetchall()
                ]
                _note_without_spec(conn, spec, due, {"cutoff": cutoff}, declared, report)
                count = report.count(f"warehouse.{spec.name}")
                if dry_run:
                    count.anonymised += len(keys)
                else:
                    count.anonymised += _rewrite(
                        conn,
                        spec,
                        keys,
                        marker=PURGED,
                        keep_ids=True,
                        subject=None,
                        reason="purged",
                        declared=declared,
                    )
            if cache_conn is None:
                _purge_cache(conn, cache_schema, cutoff, report, dry_run=dry_run)
            if not dry_run:
                report.record_id = _record(
                    conn,
                    "insert into warehouse.retention_purges (older_than_days, cutoff, operator, rows_touched, "
                    "total_rows)"
                    " values (%s, %s, %s, %s, %s) returning id",
                    (
                        days,
                        cutoff,
                        operator,
                        Jsonb(report.rows_touched()),
                        report.total,
                    ),
                )
        if cache_conn is not None:
            with cache_conn.transaction():
                _purge_cache(cache_conn, cache_schema, cutoff, report, dry_run=dry_run)
            if report.record_id is not None:  # add the cache's counts to the record
                _update_record(conn, "retention_purges", report)
    return report


def _purge_cache(
    conn: psycopg.Connection[Any],
    schema: str,
    cutoff: datetime,
    report: PrivacyReport,
    *,
    dry_run: bool,
) -> None:
    table = _cache_table(conn, schema)
    if table is None:
        return
    if dry_run:
        row = conn.execute(
            sql.SQL("select count(*) from {} where created_at < %s").format(table),
            (cutoff,),
        ).fetchone()
        deleted = int(row[0]) if row else 0
    else:
        deleted = conn.execute(sql.SQL("delete from {} where created_at < %s").format(table), (cutoff,)).rowcount
    report.count(f"{schema}.llm_cache").deleted += deleted


# --- errors ----------------------------------------------------------------------------------

_SCHEMA_ERRORS = (
    pg_errors.UndefinedTable,
    pg_errors.UndefinedColumn,
    pg_errors.InvalidSchemaName,
)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except _SCHEMA_ERRORS as exc:
        raise WarehouseNotMigrated(
            f"the warehouse schema is missing or out of date ({exc.diag.message_primary}); run `crmpilot db migrate`"
        ) from exc
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
    except psycopg.Error as exc:
        raise PrivacyOperationFailed(f"the operation failed and was rolled back: {exc}") from exc
