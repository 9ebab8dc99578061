"""`crmpilot schemas`: generate and check the JSON Schema files of every event."""

from __future__ import annotations

from pathlib import Path

import typer

from crmpilot.events import jsonschema

app = typer.Typer(help="Generate or check the JSON Schemas of every event type and version.", no_args_is_help=True)

_ROOT = typer.Option(Path("schemas"), "--dir", help="Folder holding the schema files.")


@app.command()
def write(root: Path = _ROOT) -> None:
    """Regenerate the schema files from the models."""
    changed = jsonschema.write(root)
    typer.echo(f"{len(changed)} schema file(s) written" + (": " + ", ".join(changed) if changed else ""))


@app.command()
def check(root: Path = _ROOT) -> None:
    """Fail when a schema file differs from the models (run in CI)."""
    problems = jsonschema.check(root)
    if problems:
        typer.echo("schemas out of date (run `crmpilot schemas write`):", err=True)
        for p in problems:
            typer.echo(f"  {p}", err=True)
        raise typer.Exit(1)
    typer.echo("schemas match the models")
