"""``crmpilot erase`` and ``crmpilot db purge``: a person's erasure, and the retention limit on free text.

``erase --subject <email|record id>`` anonymises or deletes everything the
warehouse and the PostgreSQL response cache hold about one person, checks that
no table still names them, and records the erasure (a hash of the subject, never
the subject) in ``warehouse.erasures``. ``db purge --older-than 30d`` (default:
``CRMPILOT_RETENTION_DAYS``) replaces the free text of rows stored before then
with ``[purged]`` and deletes older cache entries, keeping every typed column the
BI views read; it is recorded in ``warehouse.retention_purges``. Both print what
they touched per table, accept ``--dry-run`` and are safe to run again. See
docs/privacy.md.

Declared enrichments follow their specs (``CRMPILOT_ENRICHMENTS_DIR``): their
enum, multi_enum, boolean and number outputs are kept, their text, quotes and personal
outputs replaced, and so are the personal inputs of their ``crm.record.*``
events. An enrichment or topic without a spec is all free text; the summary
names it.

Exit codes: 0 done, 1 the schema needs ``crmpilot db migrate``, the operation
failed (and was rolled back) or a spec file of ``CRMPILOT_ENRICHMENTS_DIR`` is
invalid, 2 PostgreSQL unreachable or a bad subject or period.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..enrichments.registry import Registry, load_registry
from ..enrichments.spec import SpecError
from ..llm.settings import LLMSettings
from ..settings import DatabaseSettings
from ..warehouse import WarehouseError, WarehouseUnavailable, connect, describe_url
from ..warehouse.errors import InvalidRetention, InvalidSubject
from ..warehouse.privacy import (
    PrivacyReport,
    RetentionSettings,
    Subject,
    parse_retention,
)
from ..warehouse.privacy import erase as erase_subject
from ..warehouse.privacy import purge as purge_text

__all__ = ["erase", "purge"]

_out = Console()
_err = Console(stderr=True)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def erase(
    subject: Annotated[
        str,
        typer.Option(
            "--subject",
            "-s",
            metavar="EMAIL|ID",
            help="the person's e-mail address, or a contact/lead/case id, or the record id of a declared "
            "enrichment's record",
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="report what would be touched; change nothing"),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    operator: Annotated[
        str | None,
        typer.Option(help="who asked, for warehouse.erasures (default: the OS user)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Erase one person's data from the warehouse and the response cache (irreversible).

    Free text and record ids of their events, results, CRM audit, feedback and
    dead-letter rows become "\\[erased]"; categories, tokens, costs and provenance
    stay, so the BI views keep their numbers; so do the enum, multi_enum, boolean and number
    outputs of declared enrichments. Example:
    crmpilot erase --subject jane.roe@example.com --dry-run
    """
    try:
        parsed = Subject.parse(subject)
    except InvalidSubject as exc:
        _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    registry = _registry()
    if not dry_run and not yes:
        typer.confirm(
            f"erase every trace of this {parsed.kind} from the warehouse and the cache? This cannot be undone",
            abort=True,
        )
    report = _on_warehouse(
        lambda conn, cache_conn, cache_schema: erase_subject(
            conn, parsed, operator=operator or _operator(), dry_run=dry_run,
            cache_schema=cache_schema, cache_conn=cache_conn, registry=registry,
        )
    )  # fmt: skip
    _print(report, as_json, f"erasure of {parsed.kind} sha256:{parsed.sha256[:12]}")


def purge(
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="DAYS",
            help="purge free text stored more than this long ago: 30d or 30 (default: CRMPILOT_RETENTION_DAYS)",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="count what would be purged; change nothing"),
    ] = False,
    operator: Annotated[
        str | None,
        typer.Option(help="who ran it, for warehouse.retention_purges (default: the OS user)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Replace the free text of old rows with "\\[purged]" and delete old cache entries (the retention limit).

    Typed columns (category, tokens, cost, provenance, record ids) and so the BI
    views are kept. Run it daily, e.g. from cron: crmpilot db purge --older-than 30d
    """
    try:
        if older_than is None:
            days = RetentionSettings().retention_days
            if days is None:
                raise InvalidRetention("give --older-than (e.g. 30d) or set CRMPILOT_RETENTION_DAYS")
        else:
            days = parse_retention(older_than)
    except InvalidRetention as exc:
        _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from exc
    registry = _registry()
    report = _on_warehouse(
        lambda conn, cache_conn, cache_schema: purge_text(
            conn, days, operator=operator or _operator(), dry_run=dry_run,
            cache_schema=cache_schema, cache_conn=cache_conn, registry=registry,
        )
    )  # fmt: skip
    assert report.cutoff is not None
    _print(
        report,
        as_json,
        f"purge of free text stored before {report.cutoff.isoformat(timespec='seconds')} ({days} days)",
    )


def _registry() -> Registry:
    """The deployment's enrichment specs (``CRMPILOT_ENRICHMENTS_DIR``); exit 1 when a spec file is invalid."""
    try:
        return load_registry()
    except SpecError as exc:
        _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        _err.print(
            "the specs say which enrichment outputs are personal: fix them (crmpilot enrichments check) and run again",
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc


_Action = Callable[[psycopg.Connection[Any], "psycopg.Connection[Any] | None", str], PrivacyReport]


def _on_warehouse(action: _Action) -> PrivacyReport:
    """Run ``action(warehouse connection, cache connection or None, cache schema)``; exit on a warehouse error."""
    settings = DatabaseSettings()
    llm = LLMSettings()
    try:
        with ExitStack() as stack:
            conn = stack.enter_context(connect(settings))
            return action(conn, _cache_connection(stack, settings, llm), llm.cache_schema)
    except WarehouseError as exc:
        _fail(exc, settings)


def _cache_connection(stack: ExitStack, settings: DatabaseSettings, llm: LLMSettings) -> psycopg.Connection[Any] | None:
    """A connection to the response cache's database when it is not the warehouse's."""
    url = llm.database_url
    if url is None or url.get_secret_value() == settings.url.get_secret_value():
        return None
    return stack.enter_context(connect(DatabaseSettings(url=url)))


def _print(report: PrivacyReport, as_json: bool, what: str) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    table = Table(title=("dry run: " if report.dry_run else "") + what)
    for column in ("table", "anonymised", "deleted"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, count in sorted(report.tables.items()):
        table.add_row(name, f"{count.anonymised:,}", f"{count.deleted:,}")
    anonymised = sum(c.anonymised for c in report.tables.values())
    deleted = sum(c.deleted for c in report.tables.values())
    table.add_row("total", f"{anonymised:,}", f"{deleted:,}", style="bold")
    _out.print(table)
    done = "would be" if report.dry_run else "were"
    if report.enrichments_without_spec:
        _out.print(
            "[yellow]no spec registered for enrichment(s) "
            f"{escape(', '.join(sorted(report.enrichments_without_spec)))}: "
            f"all their outputs {done} treated as free text, enum values too (is CRMPILOT_ENRICHMENTS_DIR set?)[/]",
            soft_wrap=True,
        )
    if report.record_topics_without_spec:
        _out.print(
            "[yellow]no spec reads the crm.record.* events of "
            f"{escape(', '.join(sorted(report.record_topics_without_spec)))}: "
            f"all their string fields {done} treated as free text[/]",
            soft_wrap=True,
        )
    if report.dry_run:
        _out.print("dry run: nothing was changed", soft_wrap=True)
    else:
        log = "warehouse.erasures" if report.operation == "erase" else "warehouse.retention_purges"
        _out.print(f"recorded as {log} id {report.record_id}", soft_wrap=True)


def _fail(exc: WarehouseError, settings: DatabaseSettings) -> NoReturn:
    _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
    if isinstance(exc, WarehouseUnavailable):
        _err.print(
            f"is PostgreSQL up at {describe_url(settings)}? set CRMPILOT_DATABASE_URL",
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc
    raise typer.Exit(1) from exc
