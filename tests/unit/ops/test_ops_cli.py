"""The operator commands' help and command-line errors (no broker needed)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

COMMANDS = (["status"], ["lag"], ["dlq"], ["dlq", "list"], ["dlq", "show"], ["dlq", "replay"], ["produce"], ["trace"])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(ops_app: typer.Typer, command: list[str]) -> None:
    result = CliRunner().invoke(ops_app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--help" in result.output
    if command[-1] not in {"dlq", "trace"}:
        assert "--json" in result.output or "--dry-run" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dlq", "replay", "t.dlq"], "either --offset"),
        (["dlq", "replay", "t.dlq", "--all", "--offset", "0:1"], "either --offset"),
        (["produce", "t"], "either --file"),
        (["produce", "t", "--sample", "2"], "--sample needs --type"),
        (["status", "--endpoint", "nourl"], "NAME=URL"),
    ],
)
def test_contradictory_or_missing_options_exit_2(ops_app: typer.Typer, args: list[str], message: str) -> None:
    result = CliRunner().invoke(ops_app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_kafka_is_reported_not_raised(ops_app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    result = CliRunner().invoke(ops_app, ["lag", "--timeout", "1"])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
    status = CliRunner().invoke(ops_app, ["status", "--timeout", "1", "--json"])
    assert status.exit_code == 1 and '"healthy": false' in status.output
