"""`crmpilot topics` without a broker: bad files are reported with exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from crmpilot.cli.topics import app


def test_unreadable_or_invalid_files_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["apply", "--file", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read topics file" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntopics: []\n")
    invalid = runner.invoke(app, ["list", "--file", str(bad)])
    assert invalid.exit_code == 2 and "invalid topics file" in invalid.output
