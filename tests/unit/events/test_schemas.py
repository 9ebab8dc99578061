"""Checked-in JSON Schemas must match the models (a contract never drifts silently)."""

from __future__ import annotations

from pathlib import Path

from crmpilot.events import jsonschema

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    assert jsonschema.check(SCHEMAS) == [], "run `crmpilot schemas write` and commit the result"


def test_check_reports_a_drifted_file(tmp_path: Path) -> None:
    jsonschema.write(tmp_path)
    victim = tmp_path / "crm.case.created" / "v1.schema.json"
    victim.write_text(victim.read_text().replace('"case_id"', '"caseId"'))
    assert jsonschema.check(tmp_path) == ["crm.case.created/v1.schema.json"]
