"""`crmpilot enrichments` without a CRM: problems as file:line: reason, the scaffold, list, show, lock."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from crmpilot.cli import enrichments as cli
from crmpilot.cli.main import app
from crmpilot.enrichments.registry import LOCK_FILE
from crmpilot.enrichments.spec import load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"
runner = CliRunner()


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def _key_lines(node: yaml.Node) -> set[int]:
    """The 0-based lines of every mapping key in a YAML document."""
    lines: set[int] = set()
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.add(key.start_mark.line)
            lines |= _key_lines(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            lines |= _key_lines(item)
    return lines


def _copy_example(folder: Path, name: str = "churn_risk") -> Path:
    """The example spec and its prompt lock in ``folder`` (so the strict lock check passes)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / LOCK_FILE, folder / LOCK_FILE)
    return Path(shutil.copy(EXAMPLES / f"{name}.yaml", folder / f"{name}.yaml"))


def _field(
    name: str, kind: str, *, length: int = 0, values: tuple[str, ...] = (), updateable: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "length": length,
        "updateable": updateable,
        "restrictedPicklist": bool(values),
        "picklistValues": [{"value": v, "label": v, "active": True} for v in values],
    }


def _org(monkeypatch: pytest.MonkeyPatch, objects: dict[str, list[dict[str, Any]]]) -> None:
    """`--org` describes these objects (name -> fields) instead of logging in to Salesforce."""
    described = {name: {"name": name, "fields": fields} for name, fields in objects.items()}
    monkeypatch.setattr(cli, "org_describe", lambda: described.get)


def test_check_reports_file_line_reason_and_exits_1(tmp_path: Path) -> None:
    spec = _copy_example(tmp_path)
    text = spec.read_text()
    text = text.replace("    Name: {name}\n", "    Name: {name}\n    Stage: {stage}\n")
    text = text.replace("\ninputs:\n", "\nrerun_always: true\ninputs:\n")
    spec.write_text(text)

    result = runner.invoke(app, ["enrichments", "check", str(spec)])

    assert result.exit_code == 1, result.output
    assert f"{spec}:{_line_of(text, 'rerun_always')}: rerun_always: unknown key" in result.output
    # a bad placeholder is only found once the keys are right: fix the key, check again
    spec.write_text(text.replace("rerun_always: true\n", ""))
    result = runner.invoke(app, ["enrichments", "check", str(spec)])
    assert result.exit_code == 1
    fixed = spec.read_text()
    assert re.search(
        rf"{re.escape(str(spec))}:{_line_of(fixed, 'user: |')}: prompt\.user: placeholder \{{stage\}} is no input",
        result.output,
    )


def test_check_reports_an_unlocked_prompt_version(tmp_path: Path) -> None:
    spec = tmp_path / "churn_risk.yaml"
    shutil.copy(EXAMPLES / "churn_risk.yaml", spec)  # no lock file beside it
    result = runner.invoke(app, ["enrichments", "check", str(spec)])
    assert result.exit_code == 1
    line = _line_of(spec.read_text(), 'version: "2026-12-06.1"')
    assert f"{spec}:{line}: prompt version '2026-12-06.1' is not locked" in result.output


def test_check_org_reports_an_enum_value_the_picklist_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _copy_example(tmp_path)
    text = spec.read_text()
    _org(monkeypatch, {"Opportunity": [
        _field("Churn_Risk__c", "picklist", length=255, values=("low", "medium")),
        _field("Churn_Reason__c", "string", length=255),
        _field("AI_Churn_Result_Id__c", "string", length=255),
        _field("AI_Churn_Review_Required__c", "boolean"),
    ]})  # fmt: skip

    without_org = runner.invoke(app, ["enrichments", "check", str(spec)])
    assert without_org.exit_code == 0 and "ok churn_risk" in without_org.output

    result = runner.invoke(app, ["enrichments", "check", "--org", str(spec)])
    assert result.exit_code == 1, result.output
    line = _line_of(text, "      high:")
    assert (
        f"{spec}:{line}: outputs.churn_risk.values: the picklist Opportunity.Churn_Risk__c has no active value 'high'"
        in result.output
    )
    assert "(it has: low, medium)" in result.output


def test_check_org_reports_missing_read_only_and_mistyped_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _copy_example(tmp_path)
    text = spec.read_text()
    _org(monkeypatch, {"Opportunity": [
        _field("Churn_Risk__c", "picklist", length=255, values=("low", "medium", "high"), updateable=False),
        _field("Churn_Reason__c", "string", length=80),
        _field("AI_Churn_Result_Id__c", "string", length=18),
    ]})  # fmt: skip

    result = runner.invoke(app, ["enrichments", "check", "--org", str(spec)])

    assert result.exit_code == 1
    out = result.output
    assert (
        f"{spec}:{_line_of(text, 'churn_risk: Churn_Risk__c')}: crm.fields.churn_risk: "
        "Opportunity.Churn_Risk__c is read-only" in out
    )
    assert (
        f"{spec}:{_line_of(text, 'churn_reason: Churn_Reason__c')}: crm.fields.churn_reason: "
        "Opportunity.Churn_Reason__c is string(80)" in out
    )
    assert (
        f"{spec}:{_line_of(text, 'result_id_field:')}: crm.result_id_field: Opportunity.AI_Churn_Result_Id__c "
        "is string(18)" in out
    )
    assert (
        f"{spec}:{_line_of(text, 'review_field:')}: crm.review_field: Opportunity has no field "
        "'AI_Churn_Review_Required__c'" in out
    )


def test_check_org_reports_an_object_the_org_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _copy_example(tmp_path)
    _org(monkeypatch, {})
    result = runner.invoke(app, ["enrichments", "check", "--org", str(spec)])
    assert result.exit_code == 1
    assert (
        f"{spec}:{_line_of(spec.read_text(), 'object: Opportunity')}: crm.object: the org has no object 'Opportunity'"
        in result.output
    )


def test_new_writes_a_commented_spec_that_loads_and_never_overwrites(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["enrichments", "new", "renewal_intent", "--object", "Opportunity", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "renewal_intent.yaml"
    spec, _ = load_spec(path)
    assert spec.name == "renewal_intent" and spec.crm is not None and spec.crm.object == "Opportunity"
    assert spec.crm.fields == {"renewal_intent": "Renewal_Intent__c"}
    lines = path.read_text().splitlines()
    document = yaml.compose(path.read_text())
    assert document is not None
    keys = _key_lines(document)
    assert len(keys) > 30 and not [lines[n] for n in keys if "  # " not in lines[n]]

    again = runner.invoke(
        app, ["enrichments", "new", "renewal_intent", "--object", "Opportunity", "--dir", str(tmp_path)]
    )
    assert again.exit_code == 1 and "not overwritten" in again.output
    case = runner.invoke(app, ["enrichments", "new", "case_mood", "--object", "Case", "--dir", str(tmp_path)])
    assert case.exit_code == 0
    assert load_spec(tmp_path / "case_mood.yaml")[0].source.topics == ("crm.case.events",)
    for name in ("renewal_intent", "case_mood"):  # every optional key it shows commented out loads when uncommented
        text = (tmp_path / f"{name}.yaml").read_text()
        opened = re.sub(r"^(\s*)# (?=[a-z_]+: )", r"\1", text, flags=re.M)
        assert opened.count("\n") == text.count("\n") and len(re.findall(r"^\s*# [a-z_]+: ", text, re.M)) == 7
        spec, _ = parse_spec(opened, f"{name}.yaml")
        assert spec.source.where and spec.crm is not None and spec.crm.where and spec.hooks == ("my_hook",)
        assert spec.local == "my_method" and list(spec.derived) == ["escalate"]
    bad = runner.invoke(app, ["enrichments", "new", "Churn-Risk", "--object", "Opportunity", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and not (tmp_path / "Churn-Risk.yaml").exists()


def test_list_and_show_read_crmpilot_enrichments_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    listed = runner.invoke(app, ["enrichments", "list"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("churn_risk"))
    assert row.split()[:4] == ["churn_risk", "Opportunity", "ai.churn_risk", "churn_risk,"] and row.endswith(
        "churn_risk.yaml"
    )
    assert any(line.startswith("ticket_type") for line in listed.output.splitlines())

    shown = runner.invoke(app, ["enrichments", "show", "churn_risk"])
    assert shown.exit_code == 0, shown.output
    assert "You assess churn risk for account managers" in shown.output  # the spec's system text
    assert (
        '"churn_risk": the risk that the customer does not renew or leaves. Exactly one of:' in shown.output
    )  # generated format
    assert "churn_risk           -> Churn_Risk__c" in shown.output and "(locked)" in shown.output
    as_json = json.loads(runner.invoke(app, ["enrichments", "show", "churn_risk", "--json"]).output)
    assert as_json["thresholds"]["churn_reason"] == {"auto_apply": 0.0, "suggest": 0.0}
    assert as_json["prompt"]["generated_system"].startswith("You assess churn risk")

    unknown = runner.invoke(app, ["enrichments", "show", "nope"])
    assert unknown.exit_code == 1 and "registered: churn_risk, score_request, ticket_type" in unknown.output
    builtin = next(line for line in listed.output.splitlines() if line.startswith("score_request"))
    assert builtin.split()[:3] == ["score_request", "Lead", "ai.request.scored"]
    assert builtin.endswith("crmpilot/tasks/specs/score_request.yaml"), "the built-in spec, beside the declared ones"


def test_no_specs_configured_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMPILOT_ENRICHMENTS_DIR", raising=False)
    builtin = runner.invoke(app, ["enrichments", "check"])  # the built-in score_request is checked all the same
    assert builtin.exit_code == 0 and "ok score_request" in builtin.output, builtin.output
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_BUILTIN", "false")
    result = runner.invoke(app, ["enrichments", "check"])
    assert result.exit_code == 2 and "CRMPILOT_ENRICHMENTS_DIR" in result.output


def test_lock_records_a_new_prompt_version_once(tmp_path: Path) -> None:
    spec = tmp_path / "churn_risk.yaml"
    shutil.copy(EXAMPLES / "churn_risk.yaml", spec)
    first = runner.invoke(app, ["enrichments", "lock", str(spec)])
    assert first.exit_code == 0 and "locked churn_risk 2026-12-06.1" in first.output
    assert (
        json.loads((tmp_path / LOCK_FILE).read_text())["churn_risk"]
        == json.loads((EXAMPLES / LOCK_FILE).read_text())["churn_risk"]
    )
    assert runner.invoke(app, ["enrichments", "lock", str(spec)]).output.strip() == "nothing new to lock"
    assert runner.invoke(app, ["enrichments", "check", str(spec)]).exit_code == 0


def test_compose_writes_one_enricher_service_per_spec_beside_the_base_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(EXAMPLES))
    out = tmp_path / "compose.enrichments.yml"
    result = runner.invoke(app, ["enrichments", "compose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    base = yaml.safe_load((EXAMPLES.parents[1] / "docker-compose.yml").read_text())
    # the built-in score_request's enricher is the base file's own (enricher-score_request): not written again
    assert "enricher-score_request" in base["services"]
    assert set(doc["services"]) == {"enricher-churn-risk", "enricher-ticket-type"}
    churn = doc["services"]["enricher-churn-risk"]
    assert churn["command"] == ["python", "-m", "enricher", "--enrichment", "churn_risk"]
    assert (
        churn["volumes"] == [f"{EXAMPLES.resolve()}:/enrichments/0:ro"]
        and churn["environment"]["CRMPILOT_ENRICHMENTS_DIR"] == "/enrichments/0"
    )
    assert churn["environment"]["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == "enricher-churn_risk-1", (
        "static membership, as services.sh"
    )
    assert (
        set(churn["depends_on"]) <= set(base["services"])
        and churn["profiles"] == base["services"]["ticket_classifier"]["profiles"]
    )
    assert (
        churn["environment"]["CRMPILOT_KAFKA_BOOTSTRAP"]
        == base["services"]["setup"]["environment"]["CRMPILOT_KAFKA_BOOTSTRAP"]
    )


def test_show_says_what_the_filters_transforms_and_derivations_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.speckit import LEAD_QUALITY, locked

    text = (
        LEAD_QUALITY.replace(
            "  quality: {type: enum, values: {good: a real buyer, poor: not a buyer}}\n",
            "  quality: {type: enum, values: {good: a real buyer, poor: not a buyer}}\n"
            "  hot: {type: boolean, derived_from: [quality]}\n",
        )
        + "hooks: [hot_from_quality]\n"
    )
    locked(tmp_path, text, "lead_quality")
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_DIR", str(tmp_path))
    shown = runner.invoke(app, ["enrichments", "show", "lead_quality"])
    assert shown.exit_code == 0, shown.output
    assert "only events with kind in lead, quote" in shown.output
    assert "contact_email  (read as its email domain)" in shown.output
    assert "derived from quality by the hooks" in shown.output
    assert "written only for events with kind in lead" in shown.output
