"""``crmpilot report``: the BI dashboard as one self-contained HTML file, or its figures as JSON.

Reads the ``bi`` views of the database at ``CRMPILOT_DATABASE_URL``. Exit codes:
0 written, 1 the schema is not migrated, 2 PostgreSQL unreachable or bad options.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..settings import DatabaseSettings
from ..warehouse import WarehouseError, WarehouseUnavailable, connect, describe_url, require_current
from ..warehouse.report import load_figures, render_html

__all__ = ["app", "parse_since"]

app = typer.Typer(help="BI dashboard: an offline HTML report from the warehouse's bi views.")

_out = Console()
_err = Console(stderr=True)
_DAYS = re.compile(r"^(\d+)d$")


def parse_since(value: str, *, today: date | None = None) -> date:
    """``YYYY-MM-DD``, or ``Nd`` for the N days before today (UTC), as the first day of the report."""
    today = today or datetime.now(UTC).date()
    match = _DAYS.match(value.strip())
    if match:
        return today - timedelta(days=int(match[1]))
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a date (2024-05-01) nor a number of days (30d)") from None


@app.callback(invoke_without_command=True)
def report(
    since: Annotated[
        str, typer.Option(metavar="DAY", help="first day (UTC) of the report: YYYY-MM-DD, or Nd for the last N days")
    ] = "30d",
    out: Annotated[Path, typer.Option(help="where to write the HTML dashboard")] = Path("report.html"),
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON instead of writing HTML")] = False,
) -> None:
    """Render the dashboard (volume, automation, cost, overrides, confidence, DLQ, CRM latency)."""
    first_day = parse_since(since)
    settings = DatabaseSettings()
    try:
        with connect(settings) as conn:
            require_current(conn)
            figures = load_figures(conn, first_day)
    except WarehouseError as exc:
        _err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        if isinstance(exc, WarehouseUnavailable):
            _err.print(f"is PostgreSQL up at {describe_url(settings)}? set CRMPILOT_DATABASE_URL", soft_wrap=True)
            raise typer.Exit(2) from exc
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(figures.to_json(), indent=2))
        return
    out.write_text(render_html(figures), encoding="utf-8")
    totals = figures.totals
    _out.print(
        f"wrote {out} ({totals.results:,} results since {first_day.isoformat()}); open it in any browser, offline",
        soft_wrap=True,
    )
