"""Enrichment specs: the shipped examples load; a bad spec is refused with its file, line and reason."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from crmpilot.enrichments import SpecError, load_registry, parse_spec, task_for
from crmpilot.enrichments.registry import LOCK_FILE, lock_prompts, prompt_problems
from tests.speckit import LEAD_QUALITY

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"

GOOD = textwrap.dedent(
    """\
    name: churn
    source:
      topics: [crm.opportunity.events]
      event_types: [crm.record.created]
      key: record_id
    inputs:
      description: {path: fields.Description, max_tokens: 500}
    outputs:
      risk:
        type: enum
        values: {low: fine, high: leaving}
    prompt:
      version: "1"
      system: Assess churn.
      user: "<o>{description}</o>"
    crm:
      object: Opportunity
      record_id: record_id
      fields: {risk: Churn_Risk__c}
      result_id_field: AI_Churn_Result_Id__c
    """
)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "churn.yaml")
    return [str(p) for p in exc.value.problems]


def test_the_example_specs_load_and_their_prompts_are_locked() -> None:
    registry = load_registry([EXAMPLES])
    assert {s.name for s in registry} == {"churn_risk", "ticket_type", "score_request"}  # the built-in one too
    assert {s.name for s in load_registry([EXAMPLES], builtin=False)} == {"churn_risk", "ticket_type"}
    for entry in registry.entries.values():
        assert prompt_problems(entry, strict=True) == []


def test_an_enum_is_a_closed_vocabulary_in_the_schema_and_after() -> None:
    spec, _ = parse_spec(GOOD, "churn.yaml")
    task = task_for(spec)
    schema = task.output_model.model_json_schema()
    assert schema["properties"]["risk"]["enum"] == ["low", "high"]
    assert schema["additionalProperties"] is False
    with pytest.raises(ValueError):
        task.output_model.model_validate({"risk": "REFUND_APPROVED", "confidence": {"risk": 1}})
    with pytest.raises(ValueError):
        task.output_model.model_validate({"risk": "low", "confidence": {"risk": 1000000000000}})
    assert '"high": leaving' in task.prompt.system


def test_an_unknown_placeholder_is_refused_with_its_line() -> None:
    bad = GOOD.replace("{description}", "{descripton}")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:15: ") and "{descripton} is no input" in problem


def test_an_unknown_key_is_refused_with_its_line() -> None:
    bad = GOOD.replace("  key: record_id\n", "  key: record_id\n  keys: oops\n")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:6: ") and "source.keys: unknown key" in problem


def test_an_unknown_output_type_is_refused_with_its_line() -> None:
    [problem] = problems(GOOD.replace("type: enum", "type: picklist"))
    assert problem.startswith("churn.yaml:10: ") and "type must be one of enum, multi_enum" in problem


def test_a_multi_enum_is_a_bounded_list_of_the_vocabulary_in_its_order() -> None:
    spec, _ = parse_spec(
        GOOD.replace("values: {low: fine, high: leaving}", "values: {low: fine, high: leaving}\n"
                     "  signals:\n    type: multi_enum\n    max_items: 2\n    values: {price: cost, outages: down}"),
        "churn.yaml",
    )  # fmt: skip
    model = task_for(spec).output_model
    signals = model.model_json_schema()["properties"]["signals"]
    assert (signals["type"], signals["items"]["enum"], signals["maxItems"]) == ("array", ["price", "outages"], 2)
    confidence = {"risk": 1, "signals": 1}
    answer = model.model_validate({"risk": "low", "signals": ["outages", "price"], "confidence": confidence})
    assert answer.signals == ("price", "outages")  # type: ignore[attr-defined]  # a field of the model built from the spec
    twice = model.model_validate({"risk": "low", "signals": ["price", "price"], "confidence": confidence})
    assert twice.signals == ("price",)  # type: ignore[attr-defined]  # a field of the model built from the spec
    for bad in (["outages", "lawsuit"], ["price", "outages", "price"]):  # not in the list; more than max_items
        with pytest.raises(ValueError):
            model.model_validate({"risk": "low", "signals": bad, "confidence": confidence})
    assert '"signals". A list of at most 2 of these' in task_for(spec).prompt.system


def test_a_multi_enum_value_holding_the_separator_is_refused_with_its_line() -> None:
    bad = GOOD.replace("type: enum", "type: multi_enum").replace("low: fine", "'low;ish': fine")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:11: ")
    assert "outputs.risk.values: multi_enum value 'low;ish' holds ';'" in problem


def test_a_confidence_field_of_an_output_not_written_is_refused_with_its_line() -> None:
    bad = GOOD.replace("  result_id_field:", "  confidence_fields: {reason: R_Confidence__c}\n  result_id_field:")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:20: ") and "crm.confidence_fields: 'reason' is no output written" in problem


def test_an_extractive_item_field_is_refused_with_its_line() -> None:
    bad = GOOD.replace(
        "values: {low: fine, high: leaving}",
        "values: {low: fine, high: leaving}\n"
        "  steps:\n    type: items\n    fields:\n      action: {type: text, extractive: true}",
    )
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:12: ") and "an item's text is not extractive; set quote: true" in problem


def test_an_item_field_named_like_a_type_is_reported_at_its_own_line() -> None:
    bad = GOOD.replace(
        "values: {low: fine, high: leaving}",
        "values: {low: fine, high: leaving}\n"
        "  steps:\n    type: items\n    fields:\n      text:\n        type: text\n        max_length: 0",
    )
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:17: ") and "outputs.steps.fields.text.max_length" in problem


def test_a_crm_field_that_maps_no_output_is_refused() -> None:
    bad = GOOD.replace("{risk: Churn_Risk__c}", "{risk: Churn_Risk__c, reason: R__c}")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:19: ") and "'reason' is no output" in problem


def test_thresholds_out_of_order_are_refused() -> None:
    bad = GOOD.replace(
        "values: {low: fine, high: leaving}",
        "values: {low: fine, high: leaving}\n    review: {auto_apply: 0.4, suggest: 0.6}",
    )
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:12: ") and "must not exceed auto_apply" in problem


def test_invalid_yaml_names_its_line() -> None:
    [problem] = problems(GOOD.replace("key: record_id", "key: [record_id"))
    assert problem.startswith("churn.yaml:") and "not valid YAML" in problem


def test_a_prompt_edited_under_a_locked_version_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(GOOD)
    assert lock_prompts(load_registry([tmp_path])) != []
    (tmp_path / "churn.yaml").write_text(GOOD.replace("Assess churn.", "Assess churn carefully."))
    with pytest.raises(SpecError) as exc:
        load_registry([tmp_path])
    [problem] = exc.value.problems
    assert problem.line == 13 and "changed under version '1'" in problem.reason
    # a value's description is part of the prompt too
    (tmp_path / "churn.yaml").write_text(GOOD.replace("high: leaving", "high: gone"))
    with pytest.raises(SpecError):
        load_registry([tmp_path])
    # a new version is accepted, and locking it keeps the old hash
    (tmp_path / "churn.yaml").write_text(
        GOOD.replace('version: "1"', 'version: "2"').replace("high: leaving", "high: gone")
    )
    lock_prompts(load_registry([tmp_path]))
    assert set(json.loads((tmp_path / LOCK_FILE).read_text())["churn"]) == {"1", "2"}


def test_an_unlocked_prompt_fails_the_strict_check(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(GOOD)
    entry = load_registry([tmp_path]).entry("churn")
    [problem] = prompt_problems(entry, strict=True)
    assert problem.line == 13 and "not locked" in problem.reason


def test_two_specs_of_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(SpecError, match="also declared in"):
        load_registry([tmp_path])


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (
            ('  user: "<o>{description}</o>"', '  user: "<o>{description.upper}</o>"'),
            15,
            "placeholder {description.upper} is no input",
        ),
        (
            ('  user: "<o>{description}</o>"', '  user: "<o>{description!r}</o>"'),
            15,
            "placeholder {description!r} is no input",
        ),
        (
            ("  event_types: [crm.record.created]", "  event_types: [crm.record.create]"),
            4,
            "unknown event type 'crm.record.create'",
        ),
        (("  key: record_id", "  key: recordid"), 5, "crm.record.created data has no field 'recordid'"),
        (
            ("  fields: {risk: Churn_Risk__c}", "  fields: {risk: Churn_Risk__c}\n  review_field: churn_risk__c"),
            16,
            "written once",
        ),
        (
            ("  key: record_id", "  key: record_id\n  rerun_on: [AI_Churn_Result_Id__c]"),
            6,
            "its own write would run it again",
        ),
        (("    type: enum\n", "    type: enum\n    type: text\n"), 11, "type: given twice"),
        (
            ("  key: record_id", "  key: record_id\n  where:\n    sobjct: [Opportunity]"),
            7,
            "source.where.sobjct: crm.record.created data has no field 'sobjct'",
        ),
        (
            ("  record_id: record_id", "  record_id: record_id\n  where: {fields.StageName: []}"),
            19,
            "crm.where.fields.StageName: Tuple should have at least 1 item",
        ),
        (
            (
                "values: {low: fine, high: leaving}",
                "values: {low: fine, high: leaving}\n  gist: {type: text, max_sentences: 3}",
            ),
            12,
            "outputs.gist.max_sentences: only an extractive text field is made of input sentences",
        ),
        (
            ("{path: fields.Description, max_tokens: 500}", "{path: fields.Description, transform: domain}"),
            7,
            "inputs.description.transform: Input should be 'email_domain'",
        ),
    ],
)
def test_specs_that_would_fail_on_every_event_are_refused_at_load(
    change: tuple[str, str], line: int, reason: str
) -> None:
    old, new = change
    assert old in GOOD
    [problem] = problems(GOOD.replace(old, new))
    assert problem.startswith(f"churn.yaml:{line}: ") and reason in problem, problem


def test_two_specs_writing_one_field_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(
        GOOD.replace("name: churn", "name: churn_two").replace("AI_Churn_Result_Id__c", "AI_Churn2_Result_Id__c")
    )
    with pytest.raises(SpecError, match=r"Opportunity.Churn_Risk__c is also written by churn"):
        load_registry([tmp_path])
    (tmp_path / "b.yaml").write_text(
        GOOD.replace("name: churn", "name: churn_two")
        .replace("object: Opportunity", "object: Case")
        .replace("Churn_Risk__c", "AI_Category__c")
    )
    with pytest.raises(SpecError, match="is also written by the built-in tasks"):
        load_registry([tmp_path])


def test_a_filter_on_a_closed_event_field_must_name_its_values() -> None:
    spec, _ = parse_spec(LEAD_QUALITY, "score.yaml")
    assert spec.source.where == {"kind": ("lead", "quote")} and spec.crm is not None
    assert spec.crm.where == {"kind": ("lead",)}
    with pytest.raises(SpecError) as exc:
        parse_spec(LEAD_QUALITY.replace("[lead, quote]", "[lead, leed]"), "score.yaml")
    [problem] = [str(p) for p in exc.value.problems]
    assert problem.startswith("score.yaml:6: ") and "'leed' is no value of erp.request.submitted kind" in problem
    assert "(values: lead, quote, purchase, credit)" in problem


def test_a_derived_output_needs_a_hook_and_an_answered_source() -> None:
    derived = GOOD.replace(
        "values: {low: fine, high: leaving}",
        "values: {low: fine, high: leaving}\n  flag: {type: boolean, derived_from: [risk]}",
    )
    [problem] = problems(derived)
    assert problem.startswith("churn.yaml:12: ") and "a derived output needs hooks: that set it" in problem
    [problem] = problems(derived.replace("[risk]", "[rsk]") + "hooks: [flag_from_risk]\n")
    assert problem.startswith("churn.yaml:12: ") and "'rsk' is no output the model answers" in problem
    spec, _ = parse_spec(derived + "hooks: [flag_from_risk]\n", "churn.yaml")
    assert list(spec.asked) == ["risk"] and list(spec.derived) == ["flag"]
    assert "flag" not in task_for(spec).output_model.model_fields


@pytest.mark.parametrize("name", ["confidence", "model_dump", "model_fields"])
def test_an_output_named_like_the_answers_own_fields_is_refused_at_its_line(name: str) -> None:
    bad = GOOD.replace("  risk:\n", f"  {name}:\n").replace("{risk: Churn", f"{{{name}: Churn")
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:9: ") and f"outputs.{name}: the name is reserved" in problem


def test_an_item_field_named_like_a_model_member_is_refused() -> None:
    bad = GOOD.replace(
        "values: {low: fine, high: leaving}",
        "values: {low: fine, high: leaving}\n  steps:\n    type: items\n    fields:\n      model_dump: {type: boolean}",
    )
    [problem] = problems(bad)
    assert problem.startswith("churn.yaml:12: ") and "names starting with model_ are reserved" in problem


def test_a_filter_value_an_event_field_cannot_hold_is_refused_and_a_decimal_is_compared_as_one() -> None:
    from crmpilot.enrichments.pipeline import Filter
    from crmpilot.events import RequestSubmitted

    for where, value in (("{employees: [many]}", "'many'"), ("{company: [true]}", "True")):  # YAML true is no text
        [refused] = problems_of(LEAD_QUALITY.replace("{kind: [lead, quote]}", where))
        assert refused.startswith("score.yaml:6: ") and f"{value} is no value erp.request.submitted" in refused
    spec, _ = parse_spec(LEAD_QUALITY.replace("{kind: [lead, quote]}", "{amount: [1000]}"), "score.yaml")
    data = RequestSubmitted.model_validate({"request_id": "r1", "kind": "lead", "amount": "1000.00"})
    assert Filter.of(spec.source.where, [RequestSubmitted]).matches(data.model_dump(mode="json"))
    assert not Filter.of(spec.source.where, [RequestSubmitted]).matches({**data.model_dump(mode="json"), "amount": "5"})


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "score.yaml")
    return [str(p) for p in exc.value.problems]
