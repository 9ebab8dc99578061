"""The typed BI view of each declared enrichment: ``bi.<name>`` over ``warehouse.fact_enrichment``.

Every enrichment's results share one fact table, its outputs in one JSON column;
``bi.<name>`` gives an analyst one typed column per output field (enum and text:
``text``, multi_enum: ``text[]``, boolean: ``boolean``, number: ``double precision``
or ``bigint`` when ``integer``, quotes and items: ``jsonb``), a ``confidence_<field>`` column per field and the
provenance columns, for the rows of that enrichment only. :func:`apply_views`
(re)creates the views of a registry in one transaction; ``crmpilot db migrate``
runs it after the migrations.

A value whose JSON type does not match the spec (a row written by an older spec
version whose field had another type) reads as NULL instead of failing the view.
A spec named like a built-in ``bi`` view, or like anything in ``bi`` that is not
an enrichment view, is refused: :class:`EnrichmentViewConflict`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from crmpilot.errors import Fatal
from crmpilot.warehouse.errors import WarehouseError, WarehouseNotMigrated, WarehouseUnavailable
from crmpilot.warehouse.migrator import ADVISORY_LOCK_KEY, load_migrations

from .spec import (
    NAME,
    BooleanOutput,
    EnrichmentSpec,
    EnumOutput,
    ItemsOutput,
    MultiEnumOutput,
    NumberOutput,
    OutputField,
    QuotesOutput,
    TextOutput,
)

__all__ = [
    "PROVENANCE_COLUMNS",
    "EnrichmentViewConflict",
    "EnrichmentViewError",
    "EnrichmentViewFailed",
    "apply_views",
    "builtin_views",
    "view_columns",
    "view_sql",
]

_PROVENANCE = (
    ("provider", "text"), ("model", "text"), ("prompt_version", "text"), ("tokens_in", "bigint"),
    ("tokens_out", "bigint"), ("cost_usd", "numeric"), ("trace_id", "text"), ("source_topic", "text"),
    ("source_partition", "integer"), ("source_offset", "bigint"), ("event_time", "timestamp with time zone"),
    ("processed_at", "timestamp with time zone"),
)  # fmt: skip
PROVENANCE_COLUMNS = tuple(name for name, _ in _PROVENANCE)
"""The provenance columns of every ``bi.<name>`` view, after the outputs and confidences."""
_TRAILING = (("to_crm", "boolean"),)
"""Last: whether the result was for the CRM (false: its ``crm.where`` left the record out, or no CRM target)."""
_LEADING = ("result_id", "record_id", "review_decision")
_MARKER = "crmpilot enrichment view: "
"""Start of the comment on each view made here: what tells an enrichment view from any other in ``bi``."""
_BI_VIEW = re.compile(r"create\s+(?:or\s+replace\s+)?view\s+bi\.([a-z_][a-z0-9_]*)", re.IGNORECASE)
_NAME = re.compile(NAME)


class EnrichmentViewError(WarehouseError):
    """Base of the errors making the ``bi.<name>`` views."""


class EnrichmentViewConflict(EnrichmentViewError, Fatal):
    """A spec's view would replace a built-in view or another object, or has two columns of one name."""


class EnrichmentViewFailed(EnrichmentViewError, Fatal):
    """PostgreSQL refused a view statement (e.g. another view depends on it); nothing was changed."""


@cache
def builtin_views() -> frozenset[str]:
    """The names of the ``bi`` views the packaged migrations create: no enrichment may take one."""
    return frozenset(m.lower() for migration in load_migrations() for m in _BI_VIEW.findall(migration.sql))


def _typed(field: str, out: OutputField) -> tuple[sql.Composable, str]:
    """The SQL expression of an output's typed column, and its SQL type."""
    key = sql.Literal(field)
    if isinstance(out, EnumOutput | TextOutput):
        return sql.SQL("outputs ->> {}").format(key), "text"
    if isinstance(out, QuotesOutput | ItemsOutput):
        return sql.SQL("outputs -> {}").format(key), "jsonb"
    if isinstance(out, MultiEnumOutput):
        values = sql.SQL(
            "case when jsonb_typeof(outputs -> {key}) = 'array'"
            " then array(select jsonb_array_elements_text(outputs -> {key})) end"
        ).format(key=key)
        return values, "ARRAY"
    if isinstance(out, BooleanOutput):
        json_type, sql_type, cast = "boolean", "boolean", "(outputs ->> {})::boolean"
    elif isinstance(out, NumberOutput) and out.integer:
        json_type, sql_type, cast = "number", "bigint", "(outputs ->> {})::numeric::bigint"
    elif isinstance(out, NumberOutput):
        json_type, sql_type, cast = "number", "double precision", "(outputs ->> {})::double precision"
    else:  # a new output type must choose its column type here
        raise TypeError(f"no column type for output {field!r} of type {type(out).__name__}")
    guarded = sql.SQL("case when jsonb_typeof(outputs -> {}) = {} then {} end").format(
        key, sql.Literal(json_type), sql.SQL(cast).format(key)
    )
    return guarded, sql_type


def view_columns(spec: EnrichmentSpec) -> list[tuple[str, str]]:
    """The columns of ``bi.<spec.name>`` in order, each with its type as ``information_schema`` names it."""
    columns = [(name, "text") for name in _LEADING]
    columns += [(field, _typed(field, out)[1]) for field, out in spec.outputs.items()]
    columns += [(f"confidence_{field}", "double precision") for field in spec.outputs]
    return columns + list(_PROVENANCE) + list(_TRAILING)


def _check(spec: EnrichmentSpec) -> None:
    if not _NAME.match(spec.name) or not all(_NAME.match(f) for f in spec.outputs):
        raise EnrichmentViewConflict(f"enrichment {spec.name!r}: names must match {NAME}")
    if spec.name in builtin_views():
        raise EnrichmentViewConflict(
            f"enrichment {spec.name!r} cannot have a view: bi.{spec.name} is a built-in view; rename the enrichment"
        )
    names = [name for name, _ in view_columns(spec)]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise EnrichmentViewConflict(
            f"enrichment {spec.name!r}: bi.{spec.name} would have two columns named {', '.join(clash)} "
            f"(the view's own columns are "
            f"{', '.join((*_LEADING, 'confidence_<field>', *PROVENANCE_COLUMNS, *(n for n, _ in _TRAILING)))}); "
            "rename the output field"
        )


def _view(spec: EnrichmentSpec) -> sql.Composed:
    _check(spec)
    items: list[sql.Composable] = [sql.Identifier(c) for c in _LEADING]
    items += [
        sql.SQL("{} as {}").format(_typed(field, out)[0], sql.Identifier(field)) for field, out in spec.outputs.items()
    ]
    items += [
        sql.SQL(
            "case when jsonb_typeof(confidence_by_field -> {key}) = 'number'"
            " then (confidence_by_field ->> {key})::double precision end as {column}"
        ).format(key=sql.Literal(field), column=sql.Identifier(f"confidence_{field}"))
        for field in spec.outputs
    ]
    items += [sql.Identifier(c) for c in (*PROVENANCE_COLUMNS, *(n for n, _ in _TRAILING))]
    return sql.SQL("create view {view} as select {columns} from warehouse.fact_enrichment where task = {task}").format(
        view=sql.Identifier("bi", spec.name),
        columns=sql.SQL(", ").join(items),
        task=sql.Literal(spec.name),
    )


def view_sql(spec: EnrichmentSpec) -> str:
    """The ``create view bi.<name> as select …`` statement of ``spec``; raises :class:`EnrichmentViewConflict`."""
    return _view(spec).as_string()


def apply_views(conn: psycopg.Connection[Any], registry: Iterable[EnrichmentSpec]) -> list[str]:
    """(Re)create the ``bi.<name>`` view of every spec in one transaction; returns the views made (``bi.<name>``).

    Each view is dropped and created again, so a changed list of outputs takes
    effect. Every spec is checked before anything changes; a name already taken
    in ``bi`` by anything but an enrichment view is refused. Views of specs no
    longer registered are left in place.
    """
    specs = list(registry)
    statements = [(spec, _view(spec)) for spec in specs]
    if not statements:
        return []
    made: list[str] = []
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))  # one `db migrate` at a time
            taken = dict(
                conn.execute(
                    "select c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')"
                    " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                    " where n.nspname = 'bi' and c.relname = any(%s)",
                    ([spec.name for spec in specs],),
                ).fetchall()
            )
            for spec, create in statements:
                comment = taken.get(spec.name)
                if comment is not None and not comment.startswith(_MARKER):
                    raise EnrichmentViewConflict(
                        f"enrichment {spec.name!r} cannot have a view: bi.{spec.name} already exists and was not "
                        "made for an enrichment; rename the enrichment or that object"
                    )
                view = sql.Identifier("bi", spec.name)
                conn.execute(sql.SQL("drop view if exists {}").format(view))
                conn.execute(create)
                conn.execute(
                    sql.SQL("comment on view {} is {}").format(
                        view, sql.Literal(f"{_MARKER}{spec.name} (spec version {spec.version})")
                    )
                )
                made.append(f"bi.{spec.name}")
    except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as exc:
        raise WarehouseNotMigrated(
            f"warehouse.fact_enrichment or schema bi is missing ({exc.diag.message_primary}); run `crmpilot db migrate`"
        ) from exc
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
    except psycopg.Error as exc:
        raise EnrichmentViewFailed(f"the enrichment views were not changed: {exc}") from exc
    return made
