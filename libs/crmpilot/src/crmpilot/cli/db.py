"""``crmpilot db``: apply and inspect the warehouse schema migrations.

``migrate`` is safe to run repeatedly and from several processes at once; after
the migrations it (re)creates the typed view ``bi.<name>`` of every enrichment
spec in ``CRMPILOT_ENRICHMENTS_DIR`` (none when unset).
``purge`` applies the retention limit to free text (see :mod:`.privacy`).
Exit codes: 0 done, 1 the schema needs a person (an applied migration was
edited, a migration failed, a spec is invalid or its view name is taken),
2 PostgreSQL unreachable.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..enrichments.registry import load_registry
from ..enrichments.spec import SpecError
from ..enrichments.warehouse import apply_views
from ..errors import Fatal
from ..settings import DatabaseSettings
from ..warehouse import WarehouseError, WarehouseUnavailable, connect, describe_url
from ..warehouse import migrate as apply_migrations
from ..warehouse import status as migration_status
from .privacy import purge

__all__ = ["app"]

app = typer.Typer(help="Warehouse schema: apply and inspect migrations; purge old free text.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Apply pending migrations to the database at CRMPILOT_DATABASE_URL, then (re)create the enrichment views."""
    settings = DatabaseSettings()
    try:
        with connect(settings) as conn:
            applied = apply_migrations(conn)
            current = migration_status(conn)
            for m in applied:
                _out.print(f"applied {m.version:04d}_{m.name}", soft_wrap=True)
            latest = max((s.version for s in current if s.state == "applied"), default=0)
            suffix = "" if applied else " (already up to date)"
            _out.print(f"{describe_url(settings)} is at version {latest:04d}{suffix}", soft_wrap=True)
            # after the migrations, so a broken spec file never holds the schema back
            views = apply_views(conn, load_registry())
    except (WarehouseError, SpecError) as exc:
        _fail(exc, settings)
    if views:
        _out.print(f"enrichment views: {', '.join(views)}", soft_wrap=True)


@app.command()
def status() -> None:
    """Show each migration and whether it is applied, pending or changed."""
    settings = DatabaseSettings()
    try:
        with connect(settings) as conn:
            states = migration_status(conn)
    except WarehouseError as exc:
        _fail(exc, settings)
    table = Table(title=f"migrations at {describe_url(settings)}")
    for column in ("version", "name", "state", "applied at"):
        table.add_column(column)
    styles = {"applied": "green", "pending": "yellow", "changed": "bold red", "unknown": "dim"}
    for s in states:
        applied_at = s.applied_at.isoformat(timespec="seconds") if s.applied_at else ""
        table.add_row(f"{s.version:04d}", s.name, f"[{styles[s.state]}]{s.state}[/]", applied_at)
    _out.print(table)
    pending = sum(s.state == "pending" for s in states)
    if any(s.state == "changed" for s in states):
        _err.print(
            "an applied migration was edited after being applied: restore it and add a new migration", soft_wrap=True
        )
        raise typer.Exit(1)
    if pending:
        _out.print(f"{pending} pending: run `crmpilot db migrate`", soft_wrap=True)


app.command("purge")(purge)


def _fail(exc: WarehouseError | Fatal, settings: DatabaseSettings) -> NoReturn:
    _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
    if isinstance(exc, WarehouseUnavailable):
        hint = (
            f"is PostgreSQL up at {describe_url(settings)}? start it with `infra/stack.sh up`, or set "
            "CRMPILOT_DATABASE_URL"
        )
        _err.print(hint, soft_wrap=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(1) from exc
