"""``ops_app``: the operator commands mounted as ``crmpilot.cli.main`` mounts them."""

from __future__ import annotations

import pytest
import typer

from crmpilot.cli import ops


@pytest.fixture
def ops_app() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)
    app.add_typer(ops.dlq_app, name="dlq")
    for name in ("status", "lag", "produce", "trace"):
        app.command(name)(getattr(ops, name))
    return app
