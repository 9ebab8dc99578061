"""``crmpilot crm``: the CRM connection's status, and reverting crmpilot's write-backs.

``revert`` restores the audited before-values of applied changes, selected by
time, crm_writer run or result ids (filters combine), only where the CRM still
holds the value crmpilot wrote; fields changed since are reported and left
alone. Connection settings: ``CRMPILOT_SALESFORCE_*`` and ``CRMPILOT_DATABASE_URL``.
Exit codes: 0 done (skipped fields are reported, not errors), 1 the CRM
refused some restores, 2 the CRM or the database cannot be used.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..crm.connect import SalesforceSettings, salesforce_crm
from ..crm.errors import CRMError
from ..crm.feedback import multi_select_fields
from ..crm.revert import FieldRevert, RevertReport, RevertStatus, new_revert_run_id, select_applied
from ..crm.revert import revert as revert_entries
from ..crm.status import org_status
from ..enrichments.registry import load_registry
from ..enrichments.spec import SpecError
from ..settings import DatabaseSettings
from ..warehouse import PostgresWarehouse, WarehouseError, describe_url

__all__ = ["app"]

app = typer.Typer(help="The CRM: connection status, and reverting crmpilot's write-backs.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|min|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SHOWN = 50


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it has no offset) or a duration back from now: ``90m``, ``2h``, ``1d``."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match["unit"]]: float(match["n"])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO 8601 time (2026-11-29T10:00Z) nor a duration (90m, 2h, 1d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """Show the org crmpilot writes to: instance, integration user, login method and daily API usage."""
    settings = SalesforceSettings()
    try:
        org = org_status(settings)
    except CRMError as exc:
        _fail(exc)
    if json_out:
        _out.print_json(json.dumps(org.as_dict()))
        return
    table = Table(title="CRM", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    usage = "unknown"
    if org.api_used is not None and org.api_limit:
        usage = (
            f"{org.api_used:,} / {org.api_limit:,} ({100 * org.api_used / org.api_limit:.1f} %, "
            f"{org.api_remaining:,} left today)"
        )
    rows = [
        ("instance", org.instance_url),
        ("API version", org.api_version),
        ("login", org.login),
        ("integration user", f"{org.username or '?'} ({org.user_id})"),
        ("organization", org.organization_id or "?"),
        ("API usage", usage),
    ]
    for what, value in rows:
        table.add_row(what, escape(value))
    _out.print(table)


@app.command()
def revert(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="T",
            help="changes applied at or after T: ISO 8601 (2026-11-29T10:00Z, UTC if no offset) or back from now "
            "(90m, 2h, 1d)",
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="RUN_ID",
            help="changes of one crm_writer run (its CRMPILOT_CRM_WRITER_RUN_ID, logged at start; run_id in "
            "warehouse.crm_write_audit)",
        ),
    ] = None,
    result: Annotated[
        list[str] | None,
        typer.Option(
            "--result", metavar="RESULT_ID", help="changes made by a result id; repeat or comma-separate for several"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="read the records and report what would be reverted; change nothing")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON (no progress bar)")] = False,
) -> None:
    """Restore the values crmpilot's write-backs replaced, where nobody changed them since.

    Selects applied changes from the warehouse audit (filters combine), reads the
    records (one API call per 800), and writes the before-values back through
    sObject Collections (one call per 200 records). A field whose value is no
    longer what crmpilot wrote is left alone and listed. Each restored field is
    marked reverted in the audit, with a new audit row under this revert's run id.

    Examples: crmpilot crm revert --since 2h --dry-run;
    crmpilot crm revert --run crm_writer-20261129T100000Z-1a2b3c;
    crmpilot crm revert --result r1,r2 --json
    """
    result_ids = [r.strip() for value in result or [] for r in value.split(",") if r.strip()]
    if since is None and run is None and not result_ids:
        raise typer.BadParameter("say what to revert: --since, --run and/or --result")
    since_at = parse_since(since) if since is not None else None
    try:  # CRMPILOT_ENRICHMENTS_DIR: the multi-select picklists their specs write compare as sets
        multi_select = multi_select_fields(load_registry())
    except SpecError as exc:
        _fail(exc, "fix the spec files of CRMPILOT_ENRICHMENTS_DIR (crmpilot enrichments check), then revert")
    db = DatabaseSettings()
    run_id = new_revert_run_id()
    try:
        with PostgresWarehouse.connect(db) as warehouse:
            entries = select_applied(warehouse, since=since_at, run_id=run, result_ids=result_ids)
            if not entries:
                _report_empty(json_out, run_id, dry_run)
                return
            crm = salesforce_crm(SalesforceSettings())
            records = len({(e.sobject, e.record_id) for e in entries})
            with _progress(json_out) as progress:
                task = progress.add_task("dry run" if dry_run else "reverting", total=records)
                report = revert_entries(
                    entries,
                    crm,
                    warehouse,
                    run_id=run_id,
                    dry_run=dry_run,
                    on_progress=lambda n: progress.advance(task, n),
                    multi_select=multi_select,
                )
    except WarehouseError as exc:
        _fail(exc, f"is PostgreSQL up at {describe_url(db)}? set CRMPILOT_DATABASE_URL")
    except CRMError as exc:
        _fail(exc)
    if json_out:
        _out.print_json(json.dumps(_as_json(report, len(entries))))
    else:
        _print_report(report)
    if report.count("failed"):
        raise typer.Exit(1)


def _progress(disabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
        disable=disabled,
    )


def _report_empty(json_out: bool, run_id: str, dry_run: bool) -> None:
    if json_out:
        _out.print_json(
            json.dumps({"run_id": run_id, "dry_run": dry_run, "selected": 0, "records": 0, "counts": {}, "fields": []})
        )
    else:
        _out.print("no applied changes match: nothing to revert")


def _as_json(report: RevertReport, selected: int) -> dict[str, Any]:
    statuses: tuple[RevertStatus, ...] = (
        "reverted",
        "would_revert",
        "changed_since",
        "unknown_before",
        "not_found",
        "failed",
    )
    return {
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "selected": selected,
        "records": report.records,
        "api_calls": report.api_calls,
        "counts": {s: report.count(s) for s in statuses if report.count(s)},
        "fields": [_field_json(f) for f in report.fields],
    }


def _field_json(f: FieldRevert) -> dict[str, Any]:
    return {
        "sobject": f.sobject, "record_id": f.record_id, "field": f.field, "result_id": f.result_id, "status": f.status,
        "ours": f.ours, "restore": f.restore, "current": f.current, "reason": f.reason,
    }  # fmt: skip


def _print_report(report: RevertReport) -> None:
    done = "would revert" if report.dry_run else "reverted"
    changed = report.count("would_revert" if report.dry_run else "reverted")
    _out.print(
        f"{'[yellow]DRY RUN, nothing changed:[/] ' if report.dry_run else ''}{done} {changed} field(s) on "
        f"{report.records} record(s)"
        f" with {report.api_calls} API call(s); revert run {report.run_id}",
        soft_wrap=True,
    )
    left = report.with_status("changed_since", "unknown_before", "not_found", "failed")
    if not left:
        return
    table = Table(title="left alone")
    for column in ("record", "field", "status", "crmpilot wrote", "now", "why"):
        table.add_column(column)
    for f in left[:_SHOWN]:
        table.add_row(
            f"{f.sobject} {f.record_id}",
            f.field,
            f.status,
            escape(str(f.ours)),
            escape(str(f.current)),
            escape(f.reason or ""),
        )
    _out.print(table)
    if len(left) > _SHOWN:
        _out.print(f"… and {len(left) - _SHOWN} more (see --json)")


def _fail(exc: CRMError | WarehouseError | SpecError, hint: str | None = None) -> NoReturn:
    _err.print(f"[red]{escape(type(exc).__name__)}: {escape(str(exc))}[/]", soft_wrap=True)
    if hint:
        _err.print(hint, soft_wrap=True)
    elif isinstance(exc, CRMError):
        _err.print("check CRMPILOT_SALESFORCE_* (instance URL, credentials, CA bundle)", soft_wrap=True)
    raise typer.Exit(2) from exc
