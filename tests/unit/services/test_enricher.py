"""The enricher: any spec on one pipeline, on both providers; what cannot run is refused at start."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from crmpilot.crm.mapping import plan_write
from crmpilot.enrichments import EnrichmentHandler, SpecError, load_registry, parse_spec, task_for
from crmpilot.enrichments.hooks import hook, local_method, local_rule
from crmpilot.enrichments.registry import Registry
from crmpilot.events import CaseEvent, EnrichmentResult, RecordChanged
from crmpilot.llm import LLMClient, LLMInvalidOutput
from crmpilot.llm.base import LocalAnswer
from crmpilot.llm.testing import OpenAITestServer
from enricher.bootstrap import handler_for
from tests.handlerkit import envelope, handle, only_result, openai_client
from tests.speckit import EXAMPLES, LEAD_QUALITY, churn_text, locked

TOPIC = "crm.opportunity.events"
UNHAPPY = (
    "Renewal discussion for 2027. The customer complained twice about outages this quarter. "
    "Their CFO said they are evaluating a competitor and may not renew the contract."
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([EXAMPLES])


def opportunity(description: str, *, changed: tuple[str, ...] = ()) -> RecordChanged:
    return RecordChanged(
        sobject="Opportunity",
        record_id="006DM0000000001YAA",
        fields={"Name": "Acme renewal", "Description": description},
        changed_fields=changed,
    )


def churn(handler: EnrichmentHandler, event: RecordChanged, event_type: str = "crm.record.created") -> EnrichmentResult:
    result = only_result(handler, envelope(event_type, event, subject=event.record_id), TOPIC)
    assert isinstance(result, EnrichmentResult)
    return result


def answer(**overrides: Any) -> dict[str, Any]:
    base = {
        "churn_risk": "high",
        "churn_reason": "Their CFO said they are evaluating a competitor and may not renew the contract.",
        "confidence": {"churn_risk": 0.9, "churn_reason": 0.9},
    }
    return {**base, **overrides}


def test_openai_path_answers_the_spec_with_its_strict_schema(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer()) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
        [request] = server.requests
    fmt = request.body["response_format"]["json_schema"]
    assert fmt["strict"] is True and fmt["schema"]["properties"]["churn_risk"]["enum"] == ["low", "medium", "high"]
    assert result.outputs == {"churn_risk": "high", "churn_reason": answer()["churn_reason"]}
    assert result.review == "auto_apply" and result.field_review == {
        "churn_risk": "auto_apply",
        "churn_reason": "auto_apply",
    }
    assert result.task == "churn_risk" and result.record_id == "006DM0000000001YAA"
    planned = plan_write(result, {s.name: s for s in registry})
    assert (
        planned is not None and planned.ref.sobject == "Opportunity" and planned.ref.record_id == "006DM0000000001YAA"
    )
    assert planned.values == {
        "Churn_Risk__c": "high",
        "Churn_Reason__c": answer()["churn_reason"],
        "AI_Churn_Result_Id__c": result.result_id,
        "AI_Churn_Review_Required__c": False,
    }
    assert planned.id_field == "AI_Churn_Result_Id__c"


def test_a_written_fields_confidence_goes_to_its_confidence_field(tmp_path: Path) -> None:
    text = (EXAMPLES / "churn_risk.yaml").read_text()
    text = text.replace(
        "  result_id_field:", "  confidence_fields: {churn_risk: Churn_Risk_Confidence__c}\n  result_id_field:"
    )
    registry = locked(tmp_path, text)
    targets = {s.name: s for s in registry}
    held_back = {"churn_risk": 0.2, "churn_reason": 0.9}
    with OpenAITestServer(lambda req: answer(confidence={"churn_risk": 0.91234, "churn_reason": 0.9})) as server:
        sure = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    with OpenAITestServer(lambda req: answer(confidence=held_back)) as server:
        unsure = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    written, skipped = plan_write(sure, targets), plan_write(unsure, targets)
    assert written is not None and written.values["Churn_Risk_Confidence__c"] == 0.9123
    assert skipped is not None and "Churn_Risk__c" not in skipped.values
    assert "Churn_Risk_Confidence__c" not in skipped.values  # no confidence without the value it is of


NEXT_STEPS = """\
  next_steps:
    type: items
    max_items: 3
    quote: true
    fields:
      action: {type: text, max_length: 200}
      owner: {type: enum, values: {customer: the customer acts, us: our team acts}}
      within_days: {type: number, minimum: 0, maximum: 365, integer: true}
"""


def replying(body: dict[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """A test server handler answering ``body`` to every request."""
    return lambda req: body


def _with_next_steps(tmp_path: Path) -> Registry:
    text = churn_text(outputs=NEXT_STEPS).replace(
        "    churn_reason: Churn_Reason__c\n", "    churn_reason: Churn_Reason__c\n    next_steps: Next_Steps__c\n"
    )
    return locked(tmp_path, text)


def test_structured_items_are_closed_grounded_and_written_one_per_line(tmp_path: Path) -> None:
    registry = _with_next_steps(tmp_path)
    quote = "Their CFO said they are evaluating a competitor and may not renew the contract."
    steps = [{"action": "Call the CFO about the renewal", "owner": "us", "within_days": 7, "quote": quote}]
    confidence = {"churn_risk": 0.9, "churn_reason": 0.9, "next_steps": 0.85}
    with OpenAITestServer(lambda req: answer(next_steps=steps, confidence=confidence)) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
        [request] = server.requests
    schema = request.body["response_format"]["json_schema"]
    item = schema["schema"]["$defs"]["NextStepsItem"]
    assert schema["strict"] is True and item["additionalProperties"] is False
    assert item["properties"]["owner"]["enum"] == ["customer", "us"] and set(item["required"]) == {
        "action", "owner", "within_days", "quote",
    }  # fmt: skip
    assert result.outputs["next_steps"] == tuple(steps) and result.field_review["next_steps"] == "auto_apply"
    planned = plan_write(result, {s.name: s for s in registry})
    assert planned is not None
    assert (
        planned.values["Next_Steps__c"]
        == f'- action: Call the CFO about the renewal, owner: us, within_days: 7 ("{quote}")'
    )

    made_up = [{**steps[0], "quote": "The CFO asked for a discount."}]
    with OpenAITestServer(lambda req: answer(next_steps=made_up, confidence=confidence)) as server:
        unsure = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert unsure.field_review["next_steps"] == "suggest" and unsure.review_reasons["next_steps"] == "not_grounded"
    no_quote = [{**steps[0], "quote": ""}]
    with OpenAITestServer(replying(answer(next_steps=no_quote, confidence=confidence))) as server:
        unquoted = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert unquoted.review_reasons["next_steps"] == "not_grounded"
    for bad in ({**steps[0], "owner": "legal"}, {**steps[0], "within_days": 9000}, {**steps[0], "extra": "x"}):
        with (
            OpenAITestServer(replying(answer(next_steps=[bad], confidence=confidence))) as server,
            pytest.raises(LLMInvalidOutput),
        ):
            churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))


def test_items_are_refused_on_the_local_model_at_start(tmp_path: Path, local_llm: LLMClient) -> None:
    with pytest.raises(SpecError) as exc:
        handler_for(_with_next_steps(tmp_path), "churn_risk", local_llm)
    [problem] = exc.value.problems
    assert "churn_risk.next_steps: the local provider cannot answer an items field" in problem.reason


def test_a_value_outside_the_vocabulary_is_refused_not_written(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer(churn_risk="REFUND_APPROVED")) as server, pytest.raises(LLMInvalidOutput):
        churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))


def test_a_reason_not_in_the_description_is_never_auto_applied(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer(churn_reason="The customer wants a refund of all invoices.")) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert result.field_review["churn_reason"] == "suggest" and result.review_reasons["churn_reason"] == "not_grounded"
    assert result.grounding_failures == ("The customer wants a refund of all invoices.",) and result.review == "suggest"


def test_low_confidence_holds_the_field_back(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer(confidence={"churn_risk": 0.2, "churn_reason": 0.9})) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert result.field_review["churn_risk"] == "skip" and result.review == "auto_apply"
    planned = plan_write(result, {s.name: s for s in registry})
    assert planned is not None and "Churn_Risk__c" not in planned.values and "Churn_Reason__c" in planned.values


def test_a_result_with_nothing_to_write_is_still_planned_so_its_decision_is_audited(registry: Registry) -> None:
    from crmpilot.crm.fake import FakeCRM
    from crmpilot.crm.writeback import write_back

    class Audit:
        entries: list[Any] = []

        def record_crm_audit(self, entries: Any) -> int:
            self.entries += entries
            return len(entries)

        def crm_audit(self, **kw: Any) -> list[Any]:
            return []

    with OpenAITestServer(
        lambda req: answer(churn_reason="", confidence={"churn_risk": 0.1, "churn_reason": 0.9})
    ) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert result.review == "skip" and result.review_reasons == {
        "churn_risk": "low_confidence",
        "churn_reason": "no_answer",
    }
    targets = {s.name: s for s in registry}
    planned = plan_write(result, targets)
    assert planned is not None and planned.values == {} and planned.id_field == "AI_Churn_Result_Id__c"
    audit, crm = Audit(), FakeCRM()
    crm.put("Opportunity", result.record_id, Name="Acme renewal")
    [report] = write_back([result], crm, audit, enrichments=targets)
    assert report.status == "skipped_low_confidence" and [e.status for e in audit.entries] == ["skipped_low_confidence"]


def test_an_update_that_changed_no_rerun_field_asks_nothing(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer()) as server:
        handler = handler_for(registry, "churn_risk", openai_client(server))
        assert (
            handle(
                handler,
                envelope("crm.record.updated", opportunity(UNHAPPY, changed=("StageName",)), subject="006"),
                TOPIC,
            )
            == []
        )
        assert (
            churn(handler, opportunity(UNHAPPY, changed=("Description",)), "crm.record.updated").outputs["churn_risk"]
            == "high"
        )
        assert server.request_count == 1


def test_an_empty_description_is_a_skip_result_without_a_model_call(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer()) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity("   "))
        assert server.request_count == 0
    assert result.review == "skip" and result.skipped is not None and result.provenance.attempts == 0
    assert plan_write(result, {s.name: s for s in registry}) is None


def test_local_model_answers_the_enum_and_the_extractive_reason(registry: Registry, local_llm: LLMClient) -> None:
    result = churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))
    assert result.outputs["churn_risk"] == "high"
    reason = result.outputs["churn_reason"]
    assert isinstance(reason, str) and reason in UNHAPPY and result.grounding_failures == ()
    happy = churn(
        handler_for(registry, "churn_risk", local_llm),
        opportunity(
            "The customer is very happy with the product and is expanding usage to two new teams; renewal on track."
        ),
    )
    assert happy.outputs["churn_risk"] == "low"


def test_a_company_taxonomy_on_standard_case_fields_runs_zero_shot_locally(
    registry: Registry, local_llm: LLMClient
) -> None:
    handler = handler_for(registry, "ticket_type", local_llm)
    case = CaseEvent(
        case_id="500DM0000000001YAA",
        subject="Refund please",
        description="I was charged twice for my subscription, I want my money back.",
    )
    result = only_result(handler, envelope("crm.case.created", case, subject=case.case_id), "crm.case.events")
    assert result.outputs["case_reason"] == "Refund"
    planned = plan_write(result, {s.name: s for s in registry})
    assert planned is not None and planned.ref.sobject == "Case"
    assert set(planned.values) <= {"Type", "Reason", "AI_Type_Result_Id__c", "AI_Type_Review_Required__c"}


def test_a_field_the_local_model_cannot_answer_is_refused_at_start(tmp_path: Path, local_llm: LLMClient) -> None:
    text = (
        (EXAMPLES / "churn_risk.yaml")
        .read_text()
        .replace("extractive: true ", "extractive: false")
        .replace("    source: [description]\n", "")
    )
    locked(tmp_path, text)
    with pytest.raises(SpecError) as exc:
        handler_for(load_registry([tmp_path]), "churn_risk", local_llm)
    [problem] = exc.value.problems
    assert problem.file.endswith("churn_risk.yaml") and problem.line == text.splitlines().index("  churn_reason:") + 1
    assert (
        "churn_risk.churn_reason: the local provider cannot answer free text" in problem.reason
        and "CRMPILOT_LLM_PROVIDER=openai" in problem.reason
    )


def test_a_multi_enum_is_refused_on_the_local_model_at_start(tmp_path: Path, local_llm: LLMClient) -> None:
    text = (EXAMPLES / "churn_risk.yaml").read_text().replace("    type: enum\n", "    type: multi_enum\n", 1)
    locked(tmp_path, text)
    with pytest.raises(SpecError) as exc:
        handler_for(load_registry([tmp_path]), "churn_risk", local_llm)
    [problem] = exc.value.problems
    assert problem.line == text.splitlines().index("  churn_risk:") + 1
    assert "churn_risk.churn_risk: the local provider cannot answer a multi_enum field" in problem.reason


NEXT_ACTION = """\
  next_action:
    type: text
    max_length: 200
    description: what the account manager should do next
    local: next_action_for_risk
"""
CALLED: list[dict[str, Any]] = []


@local_rule("next_action_for_risk")
def _next_action(inputs: Mapping[str, Any], answer: Mapping[str, Any]) -> tuple[str, float]:
    CALLED.append(dict(answer))
    action = "Call the customer this week" if answer["churn_risk"] == "high" else "Follow up at the renewal"
    return action, 0.7


@local_rule("next_action_always_call")
def _always_call(inputs: Mapping[str, Any], answer: Mapping[str, Any]) -> tuple[str, float]:
    return "Call the customer this week", 0.7


def _with_next_action(tmp_path: Path, rule: str = "next_action_for_risk") -> tuple[Registry, str]:
    text = churn_text(outputs=NEXT_ACTION.replace("next_action_for_risk", rule))
    return locked(tmp_path, text), text


def test_a_local_rule_answers_a_field_the_local_model_has_no_method_for(tmp_path: Path, local_llm: LLMClient) -> None:
    registry, _ = _with_next_action(tmp_path)
    CALLED.clear()
    result = churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))
    assert CALLED == [{"churn_risk": result.outputs["churn_risk"], "churn_reason": result.outputs["churn_reason"]}]
    expected = "Call the customer this week" if result.outputs["churn_risk"] == "high" else "Follow up at the renewal"
    assert result.outputs["next_action"] == expected and result.confidence["next_action"] == 0.7

    other, _ = _with_next_action(tmp_path / "other", rule="next_action_always_call")
    version = local_llm.providers[0].method_version  # type: ignore[attr-defined]  # the local provider's
    assert version(task_for(other.get("churn_risk"))) != version(task_for(registry.get("churn_risk")))

    CALLED.clear()  # on an OpenAI-compatible endpoint the model answers it
    reply = answer(
        next_action="Offer a discount", confidence={"churn_risk": 0.9, "churn_reason": 0.9, "next_action": 0.8}
    )
    with OpenAITestServer(replying(reply)) as server:
        answered = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert answered.outputs["next_action"] == "Offer a discount" and CALLED == []


@local_rule("next_action_that_breaks")
def _breaks(inputs: Mapping[str, Any], answer: Mapping[str, Any]) -> tuple[str, float]:
    raise KeyError("account_owner")


@local_rule("next_action_too_long")
def _too_long(inputs: Mapping[str, Any], answer: Mapping[str, Any]) -> tuple[str, float]:
    return "call " * 100, 0.7


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("next_action_that_breaks", "the local rule 'next_action_that_breaks' failed: KeyError: 'account_owner'"),
        ("next_action_too_long", "its local rules answered outside the spec: next_action"),
    ],
)
def test_a_local_rule_that_fails_dead_letters_the_record_at_once(
    tmp_path: Path, local_llm: LLMClient, rule: str, why: str
) -> None:
    from crmpilot.errors import Permanent
    from crmpilot.llm.errors import LocalCodeFailed
    from crmpilot.streaming.dlq import error_code

    registry, _ = _with_next_action(tmp_path, rule=rule)
    with pytest.raises(LocalCodeFailed) as exc:
        churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))
    assert why in str(exc.value)
    assert isinstance(exc.value, Permanent) and error_code(exc.value) == "local_code_failed"  # no retries: the DLQ


def test_an_unregistered_local_rule_is_refused_at_start_with_its_line(tmp_path: Path, local_llm: LLMClient) -> None:
    registry, text = _with_next_action(tmp_path, rule="no_such_rule")
    with pytest.raises(SpecError) as exc:
        handler_for(registry, "churn_risk", local_llm)
    [problem] = exc.value.problems
    assert problem.line == text.splitlines().index("    local: no_such_rule") + 1
    assert problem.reason == "outputs.next_action.local: no local rule registered as 'no_such_rule'"


def test_an_unregistered_hook_is_refused_and_a_registered_one_runs(tmp_path: Path) -> None:
    text = churn_text(extra="hooks: [competitor_means_high]\n")
    registry = locked(tmp_path, text)
    with OpenAITestServer(lambda req: answer(churn_risk="medium")) as server:
        with pytest.raises(SpecError, match="no hook registered as 'competitor_means_high'"):
            handler_for(registry, "churn_risk", openai_client(server))

        @hook("competitor_means_high")
        def _(outputs: dict[str, Any], inputs: Any) -> dict[str, Any]:
            return {**outputs, "churn_risk": "high"} if "competitor" in inputs["description"] else outputs

        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert result.outputs["churn_risk"] == "high"


def test_a_record_without_the_declared_input_goes_to_the_dlq(registry: Registry) -> None:
    from crmpilot.enrichments.pipeline import MissingField

    event = RecordChanged(sobject="Opportunity", record_id="006X", fields={"Name": "n"})
    with OpenAITestServer(lambda req: answer()) as server, pytest.raises(MissingField, match="data.fields.Description"):
        churn(handler_for(registry, "churn_risk", openai_client(server)), event)


def test_pii_is_redacted_before_the_model_and_restored_in_the_reason(registry: Registry) -> None:
    text = "Call me at +1 415 555 0100 about the renewal. We are leaving for a competitor, call +1 415 555 0100."
    seen: list[str] = []

    def reply(req: Any) -> dict[str, Any]:
        seen.append(req.text)
        return answer(churn_reason="We are leaving for a competitor, call <PHONE_1>.")

    with OpenAITestServer(reply) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(text))
    assert "415 555" not in seen[0]
    assert (
        result.outputs["churn_reason"] == "We are leaving for a competitor, call +1 415 555 0100."
        and result.grounding_failures == ()
    )


def test_spec_is_parsed_once_per_file() -> None:
    spec, _ = parse_spec((EXAMPLES / "ticket_type.yaml").read_text())
    assert spec.topic == "ai.ticket_type"


ORG_HISTORY = {
    # this org files "my parcel" questions under Shipping and account closures under Cancellation
    "Shipping": [
        "Where is my parcel?",
        "The delivery is late again",
        "Tracking number shows nothing",
        "Package sent to the wrong address",
        "My order has not arrived",
        "Courier lost the box",
    ],
    "Cancellation": [
        "Please close my account",
        "I want to end the contract",
        "Cancel my plan from next month",
        "Terminate the subscription",
        "Stop my membership",
        "I am leaving, close everything",
    ],
    "Refund": [
        "I want my money back",
        "Refund the double charge",
        "Return the payment please",
        "Reimburse the fee",
        "Give me a refund for the broken item",
        "Money back for the cancelled order",
    ],
}


def test_a_head_trained_for_a_spec_field_answers_it(tmp_path: Path, registry: Registry) -> None:
    from typer import Typer
    from typer.testing import CliRunner

    from crmpilot.cli import train as train_cli
    from crmpilot.llm.local import LocalProvider

    history = tmp_path / "closed.csv"
    history.write_text(
        "subject,label\n" + "".join(f'"{t}",{label}\n' for label, texts in ORG_HISTORY.items() for t in texts)
    )
    root = Typer()
    root.add_typer(train_cli.app, name="train")
    env = {"CRMPILOT_ENRICHMENTS_DIR": str(EXAMPLES), "COLUMNS": "300"}
    args = [
        "train",
        "--enrichment",
        "ticket_type",
        "--field",
        "case_reason",
        "--data",
        str(history),
        "--out",
        str(tmp_path / "heads"),
        "--dev-fraction",
        "0.34",
    ]
    trained = CliRunner().invoke(root, args, env=env)
    assert trained.exit_code == 0, trained.output
    [folder] = (tmp_path / "heads").iterdir()
    assert f'CRMPILOT_LLM_LOCAL_HEADS=\'{{"ticket_type.case_reason": "{folder}"}}\'' in trained.output

    wrong = CliRunner().invoke(root, [*args[:4], "case_typo", *args[5:]], env=env)
    assert wrong.exit_code == 2 and "no enum output 'case_typo'" in wrong.output

    llm = LLMClient(LocalProvider(declared_heads_paths={"ticket_type.case_reason": folder}))
    case = CaseEvent(case_id="500DM0000000001YAA", subject="The courier never brought my box", description="")
    result = only_result(
        handler_for(registry, "ticket_type", llm),
        envelope("crm.case.created", case, subject=case.case_id),
        "crm.case.events",
    )
    assert result.outputs["case_reason"] == "Shipping"
    assert folder.name in (result.provenance.model_version or "") and folder.name in result.provenance.model


def test_a_trained_head_with_labels_outside_the_field_is_refused_at_start(tmp_path: Path, registry: Registry) -> None:
    from crmpilot.evaluation import read_labelled, train_head
    from crmpilot.llm.local import Encoder, LocalProvider

    history = tmp_path / "closed.csv"
    history.write_text(
        "subject,label\n" + "".join(f'"{t}",{label.lower()}\n' for label, texts in ORG_HISTORY.items() for t in texts)
    )
    folder = train_head(read_labelled(history), encoder=Encoder()).save(tmp_path / "heads")
    llm = LLMClient(LocalProvider(declared_heads_paths={"ticket_type.case_reason": folder}))
    with pytest.raises(SpecError, match="labels that are not values of case_reason"):
        handler_for(registry, "ticket_type", llm)


def test_our_own_write_back_coming_back_as_an_update_runs_nothing(registry: Registry) -> None:
    with OpenAITestServer(lambda req: answer()) as server:
        handler = handler_for(registry, "churn_risk", openai_client(server))
        own = opportunity(UNHAPPY, changed=("Churn_Risk__c", "AI_Churn_Result_Id__c", "AI_Churn_Review_Required__c"))
        assert handle(handler, envelope("crm.record.updated", own, subject="006"), TOPIC) == []
        other = RecordChanged(sobject="Account", record_id="001X", fields={"Name": "n", "Description": UNHAPPY})
        assert handle(handler, envelope("crm.record.created", other, subject="001X"), TOPIC) == []
        assert server.request_count == 0


def test_the_crm_record_is_the_specs_record_id_not_the_key(tmp_path: Path) -> None:
    text = (
        (EXAMPLES / "churn_risk.yaml")
        .read_text()
        .replace("  record_id: record_id\n", "  record_id: fields.AccountId\n")
    )
    registry = locked(tmp_path, text)
    event = RecordChanged(
        sobject="Opportunity",
        record_id="006X",
        fields={"Name": "n", "Description": UNHAPPY, "AccountId": "001DM0000000001YAA"},
    )
    with OpenAITestServer(lambda req: answer()) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), event)
    planned = plan_write(result, {s.name: s for s in registry})
    assert (
        result.record_id == "001DM0000000001YAA"
        and planned is not None
        and planned.ref.record_id == "001DM0000000001YAA"
    )


def test_a_hook_that_fails_sends_the_record_to_the_dlq(tmp_path: Path) -> None:
    from crmpilot.enrichments.pipeline import HookFailed

    locked(tmp_path, churn_text(extra="hooks: [invents_a_value]\n"))

    @hook("invents_a_value")
    def _(outputs: dict[str, Any], inputs: Any) -> dict[str, Any]:
        return {**outputs, "churn_risk": "REFUND_APPROVED"}

    with OpenAITestServer(lambda req: answer()) as server, pytest.raises(HookFailed, match="churn_risk"):
        churn(handler_for(load_registry([tmp_path]), "churn_risk", openai_client(server)), opportunity(UNHAPPY))


def test_an_unlocked_prompt_version_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "churn_risk.yaml").write_text(
        (EXAMPLES / "churn_risk.yaml").read_text().replace('version: "2026-12-06.1"', 'version: "2026-12-07.1"')
    )
    with (
        OpenAITestServer(lambda req: answer()) as server,
        pytest.raises(SpecError, match="is not locked: run `crmpilot enrichments lock`"),
    ):
        handler_for(load_registry([tmp_path]), "churn_risk", openai_client(server))


def test_the_crm_writer_refuses_a_declared_result_it_cannot_place_for_that_record_alone(registry: Registry) -> None:
    import asyncio

    from crm_writer.handler import CRMWriter, InvalidRecordId
    from crmpilot.crm.fake import FakeCRM
    from crmpilot.crm.mapping import UnknownEnrichmentResult
    from crmpilot.warehouse.memory import InMemoryWarehouse
    from tests.handlerkit import context

    with OpenAITestServer(lambda req: answer()) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    writer = CRMWriter(FakeCRM(), InMemoryWarehouse(), enrichments={s.name: s for s in registry})
    bad = result.model_copy(update={"record_id": "006 OR 1=1"})
    with pytest.raises(InvalidRecordId):
        asyncio.run(writer(envelope("ai.enrichment.completed", bad, subject="x"), context("ai.churn_risk")))
    with pytest.raises(UnknownEnrichmentResult):
        asyncio.run(
            CRMWriter(FakeCRM(), InMemoryWarehouse())(
                envelope("ai.enrichment.completed", result, subject="x"), context("ai.churn_risk")
            )
        )


def test_crm_writer_refuses_to_start_when_the_org_lacks_what_a_spec_writes(registry: Registry) -> None:
    from crm_writer.bootstrap import check_org

    def describe(sobject: str) -> dict[str, Any] | None:
        return None if sobject == "Opportunity" else {"name": sobject, "fields": []}

    with pytest.raises(SpecError) as exc:
        check_org(registry, describe)
    assert any(p.file.endswith("churn_risk.yaml") and "Opportunity" in p.reason for p in exc.value.problems)


def test_a_spec_reads_only_the_email_domain_and_enriches_and_writes_only_what_it_filters(tmp_path: Path) -> None:
    from crmpilot.events import RequestSubmitted

    registry = locked(tmp_path, LEAD_QUALITY, "lead_quality")
    targets = {s.name: s for s in registry}

    def request(kind: str) -> Any:
        data = RequestSubmitted.model_validate(
            {"request_id": f"00Q{kind}", "kind": kind, "contact_email": "Ann.Lee@Acme-Tools.COM", "description": "Hi."}
        )
        return envelope("erp.request.submitted", data, subject=data.request_id)

    reply = {"quality": "good", "confidence": {"quality": 0.9}}
    with OpenAITestServer(replying(reply)) as server:
        lead, quote, purchase = (
            handle(handler_for(registry, "lead_quality", openai_client(server)), request(kind), "erp.requests")
            for kind in ("lead", "quote", "purchase")
        )
        assert purchase == []  # not enriched: nothing emitted
        lead, quote = lead[0][1].data, quote[0][1].data
        prompts = [json.dumps(r.body["messages"]) for r in server.requests]
    assert len(prompts) == 2 and all("domain: acme-tools.com" in p and "Ann.Lee" not in p for p in prompts)
    written = plan_write(lead, targets)
    assert written is not None and written.ref.record_id == "00Qlead" and written.values["Lead_Quality__c"] == "good"
    assert quote.to_crm is False and quote.outputs == {"quality": "good"}  # scored, kept, not written
    assert plan_write(quote, targets) is None


ESCALATE = """\
  escalate:
    type: boolean
    derived_from: [churn_risk]
    description: hand the account to the retention team
"""


@hook("high_risk_escalates")
def _escalate(outputs: dict[str, Any], inputs: Any) -> dict[str, Any]:
    return {**outputs, "escalate": outputs["churn_risk"] == "high"}


@hook("forgets_to_derive")
def _forget(outputs: dict[str, Any], inputs: Any) -> dict[str, Any]:
    return outputs


def _with_escalate(tmp_path: Path, hook_name: str, source: str = "churn_risk") -> Registry:
    block = ESCALATE.replace("[churn_risk]", f"[{source}]")
    return locked(tmp_path, churn_text(outputs=block, extra=f"hooks: [{hook_name}]\n"))


def test_a_derived_output_is_set_by_its_hook_never_asked_and_as_sure_as_its_source(
    tmp_path: Path, local_llm: LLMClient
) -> None:
    from crmpilot.enrichments.pipeline import HookFailed

    registry = _with_escalate(tmp_path, "high_risk_escalates")
    with OpenAITestServer(replying(answer(confidence={"churn_risk": 0.83, "churn_reason": 0.95}))) as server:
        result = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
        [request] = server.requests
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert "escalate" not in schema["properties"] and "escalate" not in request.body["messages"][0]["content"]
    assert result.outputs["escalate"] is True and result.confidence["escalate"] == 0.83
    assert result.field_review["escalate"] == "auto_apply"

    on_local = churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))  # no rule needed
    assert on_local.outputs["escalate"] == (on_local.outputs["churn_risk"] == "high")

    with OpenAITestServer(replying(answer(confidence={"churn_risk": 0.6, "churn_reason": 0.95}))) as server:
        unsure = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert unsure.field_review["escalate"] == unsure.field_review["churn_risk"] == "suggest"
    made_up = answer(
        churn_reason="The customer asked for a refund.", confidence={"churn_risk": 0.9, "churn_reason": 0.9}
    )
    with OpenAITestServer(replying(made_up)) as server:
        ungrounded = churn(
            handler_for(
                _with_escalate(tmp_path / "from_reason", "high_risk_escalates", "churn_reason"),
                "churn_risk",
                openai_client(server),
            ),
            opportunity(UNHAPPY),
        )
    assert ungrounded.field_review["escalate"] == "suggest"  # never surer than its source: not grounded
    assert ungrounded.review_reasons["escalate"] == "not_grounded"

    forgetful = _with_escalate(tmp_path / "forgetful", "forgets_to_derive")
    with (
        OpenAITestServer(replying(answer())) as server,
        pytest.raises(HookFailed, match="no hook set the derived output escalate"),
    ):
        churn(handler_for(forgetful, "churn_risk", openai_client(server)), opportunity(UNHAPPY))


METHOD_CALLS: list[Mapping[str, Any]] = []


@local_method("churn_by_keywords")
async def _churn_by_keywords(provider: Any, task: Any, inputs: Mapping[str, Any]) -> LocalAnswer:
    METHOD_CALLS.append(inputs)
    sentences = [s.strip() + "." for s in inputs["description"].split(".") if s.strip()]
    reason = next((s for s in sentences if "competitor" in s), sentences[0])
    tokens = await provider.batcher.token_count(inputs["description"])  # the provider's own encoder
    risk = "high" if "competitor" in reason else "low"
    return LocalAnswer(
        {"churn_risk": risk, "churn_reason": reason, "confidence": {"churn_risk": 0.9, "churn_reason": 0.8}}, tokens
    )


@local_method("churn_always_low")
async def _churn_always_low(provider: Any, task: Any, inputs: Mapping[str, Any]) -> LocalAnswer:
    return LocalAnswer(
        {"churn_risk": "low", "churn_reason": "", "confidence": {"churn_risk": 0.5, "churn_reason": 0.0}}, 0
    )


def test_a_local_method_answers_the_whole_spec_on_the_local_model(tmp_path: Path, local_llm: LLMClient) -> None:
    text = (EXAMPLES / "churn_risk.yaml").read_text()
    registry = locked(tmp_path, text + "local: churn_by_keywords\n")
    METHOD_CALLS.clear()
    result = churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))
    assert len(METHOD_CALLS) == 1 and result.outputs == {
        "churn_risk": "high",
        "churn_reason": "Their CFO said they are evaluating a competitor and may not renew the contract.",
    }
    assert result.confidence == {"churn_risk": 0.9, "churn_reason": 0.8} and result.provenance.tokens_in > 0
    version = local_llm.providers[0].method_version  # type: ignore[attr-defined]  # the local provider's
    other = locked(tmp_path / "other", text + "local: churn_always_low\n")  # a method of the same module
    assert version(task_for(registry.get("churn_risk"))) != version(task_for(other.get("churn_risk")))

    with OpenAITestServer(replying(answer(churn_risk="medium"))) as server:
        answered = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert answered.outputs["churn_risk"] == "medium" and len(METHOD_CALLS) == 1  # the endpoint's model answers

    locked(tmp_path, text + "local: no_such_method\n")
    with pytest.raises(SpecError) as exc:
        handler_for(load_registry([tmp_path]), "churn_risk", local_llm)
    [problem] = exc.value.problems
    assert problem.line == len(text.splitlines()) + 1
    assert problem.reason == "local: no local method registered as 'no_such_method'"


GIST = """\
  gist:
    type: text
    extractive: true
    max_sentences: 2
    max_length: 400
    source: [description]
    description: the customer complains, is unhappy, evaluates a competitor or may not renew
"""


def test_an_extractive_summary_of_several_sentences_grounds_each_one(tmp_path: Path, local_llm: LLMClient) -> None:
    registry = locked(tmp_path, churn_text(outputs=GIST))
    opening, _, last = (s if s.endswith(".") else s + "." for s in UNHAPPY.split(". "))
    skipping = f"{opening} {last}"  # two sentences of the description, not next to each other there
    confidence = {"churn_risk": 0.9, "churn_reason": 0.9, "gist": 0.9}
    with OpenAITestServer(replying(answer(gist=skipping, confidence=confidence))) as server:
        grounded = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
        [request] = server.requests
    assert "up to 2 sentences of the input, each copied verbatim" in request.body["messages"][0]["content"]
    assert grounded.field_review["gist"] == "auto_apply" and grounded.grounding_failures == ()
    invented = f"{last} The customer asked for a refund."
    with OpenAITestServer(replying(answer(gist=invented, confidence=confidence))) as server:
        held = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
    assert held.review_reasons["gist"] == "not_grounded" and held.grounding_failures == (
        "The customer asked for a refund.",
    )
    for wrong in (f"{last} {opening}", f"{last} {last}", UNHAPPY):  # reordered, repeated, more than 2 sentences
        with OpenAITestServer(replying(answer(gist=wrong, confidence=confidence))) as server:
            off = churn(handler_for(registry, "churn_risk", openai_client(server)), opportunity(UNHAPPY))
        assert off.review_reasons["gist"] == "not_grounded", wrong

    local = churn(handler_for(registry, "churn_risk", local_llm), opportunity(UNHAPPY))
    picked = [s + ("" if s.endswith(".") else ".") for s in str(local.outputs["gist"]).split(". ")]
    assert len(picked) == 2 and all(p in UNHAPPY for p in picked)  # two sentences of the description, in its order
    assert UNHAPPY.index(picked[0]) < UNHAPPY.index(picked[1]) and local.grounding_failures == ()


def test_the_local_summary_of_unpunctuated_lines_is_grounded(tmp_path: Path, local_llm: LLMClient) -> None:
    registry = locked(tmp_path, churn_text(outputs=GIST))
    lines = (  # short lines without end marks: each is a sentence
        "Quick update on Acme\n"
        "Unhappy with the outages\n"
        "Lunch was at noon\n"
        "Looking at a competitor now\n"
        "Might not renew in 2027\n"
    )
    result = churn(handler_for(registry, "churn_risk", local_llm), opportunity(lines))
    assert str(result.outputs["gist"]).count("\n\n") == 1 and result.grounding_failures == ()
    assert result.confidence["gist"] < 1.0  # the closest sentence's share, not the chosen ones' sum
