"""`crmpilot db` tells the user what is wrong when PostgreSQL cannot be reached."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crmpilot.cli.db import app


@pytest.mark.parametrize("command", ["migrate", "status"])
def test_unreachable_database_exits_2_with_a_hint(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", "postgresql://crmpilot:secret-pw@127.0.0.1:1/crmpilot")
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 2
    assert "crmpilot@127.0.0.1:1/crmpilot" in result.output
    assert "CRMPILOT_DATABASE_URL" in result.output
    assert "secret-pw" not in result.output
