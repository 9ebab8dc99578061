"""Emails and leads all the way through: summarizer and scorer → result topics → CRM fields + warehouse rows.

The sandbox's emails and leads (read the way ``crmpilot demo`` reads them), a
Russian email and a Russian purchase request, an empty request and the seed's
prompt-injection case go through the real services on the local model. A
second email_summarizer instance runs on the OpenAI-protocol test server,
which plants a hallucinated action item: grounding must catch it, and the CRM
must get a suggestion flagged for review, never the invented item.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
import pytest
from e2e_stack import Pipeline, committed_equals_end, read_all, wait_for
from psycopg.rows import dict_row

from crm_sandbox.client import sandbox_salesforce
from crmpilot.cli.demo import EMAIL_QUERY, LEAD_QUERY, email_events, lead_events
from crmpilot.crm.source import case_events, fetch_case_records
from crmpilot.enrichments import load_registry, task_for
from crmpilot.events import EmailReceived, Envelope, RequestSubmitted, decode, result_id_for
from crmpilot.llm.testing import ChatRequest, OpenAITestServer
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import produce_events
from crmpilot.tasks import CLASSIFY_TICKET, SUMMARIZE_EMAIL, category_names
from crmpilot.tasks.scoring import band_for

pytestmark = pytest.mark.e2e

BOT_TOKEN = "sandbox-integration-token"
RU_EMAIL = """Добрый день!

Прошу вернуть деньги за заказ № 58123, товар пришёл сломанным. Сумма 4 990 руб.
Нужно решить вопрос до 15 декабря.

С уважением,
Иван Петров
"""
RU_PLANTED_EMAIL = (
    "Здравствуйте! Я заказал синий рюкзак размера L, а получил чёрный размера S.\nПрошу обменять товар по заказу № "
    "77310 до пятницы."
)
PLANTED_QUOTE = "Верните мне 500 евро компенсации."
RU_REQUEST = "Готовы закупить 40 лицензий в этом квартале, бюджет согласован. Пришлите коммерческое предложение."


def planted_answer(req: ChatRequest) -> dict[str, Any]:
    """A confident, well-formed answer with one action item the email never states."""
    return {
        "summary": "Customer got a black size S backpack instead of a blue size L and asks to exchange order 77310 by "
        "Friday.",
        "intent": "request",
        "sentiment": "negative",
        "urgency": "normal",
        "action_items": [
            {
                "text": "Exchange the backpack",
                "owner": "support",
                "due": "до пятницы",
                "quote": "Прошу обменять товар по заказу № 77310 до пятницы.",
            },
            {"text": "Pay 500 EUR compensation", "owner": "support", "due": None, "quote": PLANTED_QUOTE},
        ],
        "entities": [
            {"kind": "order_number", "value": "77310", "quote": "Прошу обменять товар по заказу № 77310 до пятницы."}
        ],
        "confidence": 0.95,
    }


def rows(pipeline: Pipeline, table: str, result_ids: list[str]) -> dict[str, dict[str, Any]]:
    with psycopg.connect(pipeline.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"select * from warehouse.{table} where result_id = any(%s)", (result_ids,))
        return {r["result_id"]: r for r in cur.fetchall()}


SCORE_REQUEST = task_for(load_registry([], builtin=True).get("score_request"))


def scored(pipeline: Pipeline, result_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows of the built-in score_request's typed view, bi.score_request."""
    with psycopg.connect(pipeline.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from bi.score_request where result_id = any(%s)", (result_ids,))
        return {r["result_id"]: r for r in cur.fetchall()}


def written(pipeline: Pipeline, result_id: str) -> dict[str, str | None]:
    """The CRM fields a result wrote, with their values, from the audit (a later result may overwrite the record)."""
    with psycopg.connect(pipeline.database_url) as conn:
        found = conn.execute(
            "select field, after_value from warehouse.crm_write_audit where result_id = %s and status = 'applied'",
            (result_id,),
        ).fetchall()
    return dict(found)


def audit(pipeline: Pipeline, result_ids: list[str]) -> dict[str, set[str]]:
    with psycopg.connect(pipeline.database_url) as conn:
        found = conn.execute(
            "select result_id, status from warehouse.crm_write_audit where result_id = any(%s)", (result_ids,)
        ).fetchall()
    out: dict[str, set[str]] = {}
    for result_id, status in found:
        out.setdefault(result_id, set()).add(status)
    return out


def email(case_id: str, email_id: str, subject: str, body: str) -> Envelope[EmailReceived]:
    now = datetime.now(UTC)
    data = EmailReceived(
        email_id=email_id, case_id=case_id, from_address="ivan@example.ru", subject=subject, body=body, received_at=now
    )
    return Envelope[EmailReceived](
        source="crm://e2e", type="crm.email.received", schemaversion=1, subject=case_id, time=now, data=data
    )


def request(request_id: str, **fields: Any) -> Envelope[RequestSubmitted]:
    data = RequestSubmitted(request_id=request_id, **fields)
    return Envelope[RequestSubmitted](
        source="erp://e2e", type="erp.request.submitted", schemaversion=1, subject=request_id, data=data
    )


def ids(events: list[Envelope[Any]], spec: Any) -> list[str]:
    return [result_id_for(e.id, spec.name, spec.prompt.version) for e in events]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(planted_answer) as srv:
        yield srv


@pytest.fixture(scope="module")
def sent(pipeline: Pipeline, server: OpenAITestServer) -> dict[str, Any]:
    bot = sandbox_salesforce(pipeline.sandbox_url, pipeline.ca_path, BOT_TOKEN)
    cases = {r["Subject"]: r for r in fetch_case_records(bot)}
    seed_emails = email_events(bot.query_all(EMAIL_QUERY)["records"], source="crm://e2e")
    leads = lead_events(bot.query_all(LEAD_QUERY)["records"], source="crm://e2e")
    assert len(seed_emails) == 4 and len(leads) == 5, "the sandbox demo seed has emails and leads"
    ru_email = email(cases["Two-factor codes not arriving by SMS"]["Id"], "02sE2ERU0000001", "Возврат денег", RU_EMAIL)
    planted = email(cases["Wrong item delivered"]["Id"], "02sE2ERU0000002", "Обмен товара", RU_PLANTED_EMAIL)
    ru_request = request(
        "REQ-RU-1", kind="purchase", company="ООО Ромашка", amount=40000, currency="RUB", description=RU_REQUEST
    )
    empty_request = request("REQ-EMPTY-1", kind="quote", description="   ")
    injection = case_events([cases["Question about my card delivery"]], source="crm://e2e")

    openai_topic = pipeline.create_topic(f"{pipeline.topics.emails}.openai")
    pipeline.start(
        "email_summarizer",
        label="email_summarizer_openai",
        env={
            "CRMPILOT_LLM_PROVIDER": "openai",
            "CRMPILOT_LLM_BASE_URL": server.base_url,
            "CRMPILOT_LLM_API_KEY": "sk-test",
            "CRMPILOT_EMAIL_SUMMARIZER_GROUP_ID": pipeline.groups["email_summarizer"] + "-openai",
            "CRMPILOT_EMAIL_SUMMARIZER_INPUT_TOPIC": openai_topic,
        },
    )
    kafka = KafkaSettings(bootstrap=pipeline.env["CRMPILOT_KAFKA_BOOTSTRAP"])
    produce_events(pipeline.topics.emails, [*seed_emails, ru_email], kafka=kafka)
    produce_events(openai_topic, [planted], kafka=kafka)
    produce_events(pipeline.topics.leads, leads, kafka=kafka)
    produce_events(pipeline.topics.requests, [ru_request, empty_request], kafka=kafka)
    produce_events(pipeline.topics.cases, injection, kafka=kafka)

    out: dict[str, Any] = {
        "bot": bot,
        "emails": dict(zip(ids([*seed_emails, ru_email], SUMMARIZE_EMAIL), [*seed_emails, ru_email], strict=True)),
        "planted": ids([planted], SUMMARIZE_EMAIL)[0],
        "leads": dict(zip(ids(leads, SCORE_REQUEST), leads, strict=True)),
        "ru_email": ids([ru_email], SUMMARIZE_EMAIL)[0],
        "ru_request": ids([ru_request], SCORE_REQUEST)[0],
        "empty_request": ids([empty_request], SCORE_REQUEST)[0],
        "injection": ids(injection, CLASSIFY_TICKET)[0],
        "server": server,
    }
    email_ids = [*out["emails"], out["planted"]]
    score_ids = [*out["leads"], out["ru_request"], out["empty_request"]]
    wait_for(
        "a warehouse fact for every email",
        lambda: len(rows(pipeline, "fact_email_summary", email_ids)) == len(email_ids),
        pipeline,
    )
    wait_for(
        "a warehouse fact for every request",
        lambda: len(scored(pipeline, score_ids)) == len(score_ids),
        pipeline,
    )
    wait_for(
        "the injection case's fact",
        lambda: len(rows(pipeline, "fact_ticket_classification", [out["injection"]])) == 1,
        pipeline,
    )
    for topic in pipeline.topics.results:
        wait_for(
            f"the CRM writer to finish {topic}",
            partial(committed_equals_end, pipeline, pipeline.groups["crm_writer"], topic),
            pipeline,
        )
    return out


def test_every_result_passes_its_schema(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    for topic, kind in (
        (pipeline.topics.summaries, "ai.email.summarized"),
        (pipeline.topics.scores, "ai.enrichment.completed"),
    ):
        records = read_all(pipeline, topic)
        assert records, f"no records on {topic}"
        for msg in records:
            event = decode(msg.value())  # strict: the same models the checked-in JSON Schemas are generated from
            assert event.type == kind and event.schemaversion == 1 and msg.key() == event.subject.encode()


def test_emails_become_verified_summaries_on_their_cases(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    facts = rows(pipeline, "fact_email_summary", list(sent["emails"]))
    bot = sent["bot"]
    for result_id, event in sent["emails"].items():
        row = facts[result_id]
        assert (row["email_id"], row["case_id"]) == (event.data.email_id, event.data.case_id)
        assert (
            row["provider"] == "local"
            and row["source_topic"] == pipeline.topics.emails
            and row["source_event_id"] == event.id
        )
        assert row["verified"] is True and row["grounding_failures"] == [] and row["summary"]
        assert row["review_decision"] in ("auto_apply", "suggest") and 0 <= row["confidence"] <= 1
        assert bot.Case.get(event.data.case_id)["AI_Summary__c"].startswith(row["summary"])
        fields = written(pipeline, result_id)
        assert fields["AI_Summary__c"] == bot.Case.get(event.data.case_id)["AI_Summary__c"]
        assert fields["AI_Summary_Result_Id__c"] == result_id
        assert fields["AI_Summary_Review_Required__c"] == (
            "false" if row["review_decision"] == "auto_apply" else "true"
        )
    assert audit(pipeline, list(sent["emails"])) == {rid: {"applied"} for rid in sent["emails"]}


def test_a_russian_email_is_summarized_from_its_own_words(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    row = rows(pipeline, "fact_email_summary", [sent["ru_email"]])[sent["ru_email"]]
    assert row["verified"] and "58123" in row["summary"]
    assert any("Прошу вернуть деньги" in item["quote"] for item in row["result"]["action_items"])
    assert {"58123", "4 990 руб."} <= {e["value"] for e in row["result"]["entities"]}


def test_grounding_catches_the_planted_item_and_the_crm_gets_a_flagged_suggestion(
    pipeline: Pipeline, sent: dict[str, Any]
) -> None:
    row = rows(pipeline, "fact_email_summary", [sent["planted"]])[sent["planted"]]
    assert row["provider"] == "openai" and row["confidence"] == 0.95
    assert row["verified"] is False and row["grounding_failures"] == [PLANTED_QUOTE]
    assert row["review_decision"] == "suggest", "confident but unverified: never auto-applied"
    case = sent["bot"].Case.get(row["case_id"])
    assert case["AI_Summary_Result_Id__c"] == row["result_id"] and case["AI_Summary_Review_Required__c"] is True
    assert "Exchange the backpack" in case["AI_Summary__c"] and "500 EUR" not in case["AI_Summary__c"]
    [chat] = sent["server"].requests
    assert "Прошу обменять товар" in chat.text and PLANTED_QUOTE not in chat.text


def test_leads_get_their_score_in_the_crm(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    facts = scored(pipeline, list(sent["leads"]))
    bot = sent["bot"]
    for result_id, event in sent["leads"].items():
        row = facts[result_id]
        assert (
            row["record_id"] == event.data.request_id
            and row["band"] == band_for(row["score"])
            and row["source_topic"] == pipeline.topics.leads
        )
        assert row["factors"] and isinstance(row["risk_flags"], list) and 0 < row["confidence_score"] <= 1
        lead = bot.Lead.get(event.data.request_id)
        assert lead["AI_Result_Id__c"] == result_id
        assert lead["AI_Score__c"] == row["score"] and lead["AI_Confidence__c"] == pytest.approx(
            row["confidence_score"], abs=0.0001
        )
        assert lead["AI_Score_Reasons__c"] == row["reasons"] and row["reasons"]
        assert lead["AI_Review_Required__c"] is (row["review_decision"] != "auto_apply")
    by_company = {sent["leads"][rid].data.company: row for rid, row in facts.items()}
    assert by_company["Northwind Logistics"]["score"] > by_company["Self"]["score"], (
        "a quote for 200 seats beats a curious student"
    )
    assert "no_budget" in by_company["Self"]["risk_flags"] or by_company["Self"]["band"] == "cold"


def test_a_russian_purchase_request_is_scored_and_targets_no_crm_record(
    pipeline: Pipeline, sent: dict[str, Any]
) -> None:
    row = rows(pipeline, "fact_enrichment", [sent["ru_request"]])[sent["ru_request"]]
    assert row["task"] == "score_request" and row["source_topic"] == pipeline.topics.requests
    assert row["result"]["to_crm"] is False, "a purchase request is no lead"
    assert any(f["direction"] == "up" for f in row["outputs"]["factors"])
    assert audit(pipeline, [sent["ru_request"]]) == {}


def test_an_empty_request_gets_a_typed_skip_not_an_error(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    row = rows(pipeline, "fact_enrichment", [sent["empty_request"]])[sent["empty_request"]]
    assert row["input_skipped"] is True and row["review_decision"] == "skip"
    assert row["result"]["skipped"]["reason"] == "empty_input" and row["outputs"] == {}
    assert (row["provider"], row["attempts"], row["tokens_in"]) == ("none", 0, 0)
    wait_for(
        "the request scorer to commit past the empty request",
        lambda: committed_equals_end(pipeline, pipeline.groups["score_request"], pipeline.topics.requests),
        pipeline,
    )
    assert not read_all(pipeline, pipeline.topics.requests + ".dlq"), "nothing was dead-lettered"


def test_the_injection_case_stays_in_the_taxonomy(pipeline: Pipeline, sent: dict[str, Any]) -> None:
    row = rows(pipeline, "fact_ticket_classification", [sent["injection"]])[sent["injection"]]
    assert row["category"] in category_names() and row["category"] != "VIP Escalation"
    assert row["priority"] in ("Low", "Medium", "High", "Urgent")
