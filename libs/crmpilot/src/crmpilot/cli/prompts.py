"""`crmpilot prompts`: the prompt registry (every shipped version and its hash)."""

from __future__ import annotations

import typer

from crmpilot.tasks import registry

app = typer.Typer(help="List, check and lock the versioned prompts of the AI tasks.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """Every prompt version in the registry; * marks the one the code ships now."""
    current = {(s.prompt.id, s.prompt.version) for s in registry.SHIPPED()}
    for prompt_id, versions in sorted(registry.locked().items()):
        for version, digest in sorted(versions.items()):
            mark = "*" if (prompt_id, version) in current else " "
            typer.echo(f"{mark} {prompt_id:<18} {version:<16} {digest}")


@app.command()
def check() -> None:
    """Fail when a prompt's text changed without a version bump (run in CI)."""
    drift = registry.check()
    for d in drift:
        typer.echo(str(d), err=True)
    if drift:
        raise typer.Exit(1)
    typer.echo("every prompt matches its locked version")


@app.command()
def lock() -> None:
    """Record the current prompt versions; never rewrites a locked version's hash."""
    try:
        added = registry.lock()
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(added) if added else "nothing new to lock")
