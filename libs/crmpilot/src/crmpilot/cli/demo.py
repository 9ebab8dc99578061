"""`crmpilot demo`: send the CRM's cases, emails and leads through the running pipeline and show what came back.

Reads every Case, incoming EmailMessage and Lead from the CRM (the sandbox's
demo org by default) and sends one ``crm.case.created`` event per case to
``crm.case.events`` (ticket_classifier), one ``crm.email.received`` event per
email to ``crm.email.events`` (email_summarizer; the case is the email's
ParentId) and one ``erp.request.submitted`` event of kind ``lead`` per lead to
``crm.lead.events`` (request_scorer), plus two deliberately bad records. It
waits with a progress bar until every result is in the warehouse and its CRM
write decided, then prints one table per task and where to look.
Event ids are derived from the record and its creation time, so running the
demo twice sends the same events: nothing is enriched or written twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import typer
from confluent_kafka import Consumer, Producer, TopicPartition
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crmpilot.crm.connect import SalesforceSettings, connect
from crmpilot.crm.source import case_events, fetch_case_records
from crmpilot.enrichments import EnrichmentSpec, load_registry, task_for
from crmpilot.events import EmailReceived, Envelope, RequestSubmitted, result_id_for
from crmpilot.llm.base import TaskSpec
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import EventProducer
from crmpilot.tasks import CLASSIFY_TICKET, SCORE_REQUEST, SUMMARIZE_EMAIL

app = typer.Typer(help="Run the demo against the running services (see `make demo`).", no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 150)

CASE_TOPIC = "crm.case.events"
EMAIL_TOPIC = "crm.email.events"
LEAD_TOPIC = "crm.lead.events"
EMAIL_QUERY = (
    "SELECT Id, ParentId, Subject, TextBody, FromAddress, ToAddress, Incoming, MessageDate, CreatedDate FROM "
    "EmailMessage"
)
LEAD_QUERY = (
    "SELECT Id, Company, Email, Country, NumberOfEmployees, Description, LastModifiedDate, CreatedDate FROM Lead"
)
_NAMESPACE = uuid.UUID("6f1d3c1e-9a57-4d2b-8a8e-2f4f3f0c9b11")
_BODY_MAX = 32_000
"""An EmailReceived body holds at most this much; a longer TextBody is clipped at the source."""


def _stable_id(record_id: str, created: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{record_id}:{created}"))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def email_events(records: Iterable[Mapping[str, Any]], *, source: str) -> list[Envelope[EmailReceived]]:
    """One ``crm.email.received`` event per incoming EmailMessage, about (and keyed by) its case.

    The event time is when the record was created in the CRM: the case it
    answers cannot have been edited by a person after that without the CRM
    writer noticing.
    """
    events = []
    for rec in records:
        if not rec.get("Incoming"):
            continue
        data = EmailReceived(
            email_id=rec["Id"],
            case_id=rec.get("ParentId"),
            from_address=rec.get("FromAddress") or "",
            to_address=rec.get("ToAddress") or "",
            subject=rec.get("Subject") or "",
            body=(rec.get("TextBody") or "")[:_BODY_MAX],
            received_at=_time(rec.get("MessageDate") or rec["CreatedDate"]),
        )
        events.append(
            Envelope[EmailReceived](
                id=_stable_id(rec["Id"], rec["CreatedDate"]),
                source=source,
                type="crm.email.received",
                schemaversion=1,
                subject=data.case_id or data.email_id,
                time=_time(rec["CreatedDate"]),
                data=data,
            )
        )
    return events


def lead_events(records: Iterable[Mapping[str, Any]], *, source: str) -> list[Envelope[RequestSubmitted]]:
    """One ``erp.request.submitted`` event of kind ``lead`` per Lead, keyed by the lead id."""
    events = []
    for rec in records:
        data = RequestSubmitted(
            request_id=rec["Id"],
            kind="lead",
            company=rec.get("Company") or "",
            contact_email=rec.get("Email"),
            country=rec.get("Country"),
            employees=rec.get("NumberOfEmployees"),
            description=rec.get("Description") or "",
        )
        events.append(
            Envelope[RequestSubmitted](
                id=_stable_id(rec["Id"], rec["CreatedDate"]),
                source=source,
                type="erp.request.submitted",
                schemaversion=1,
                subject=rec["Id"],
                time=_time(rec["LastModifiedDate"]),
                data=data,
            )
        )
    return events


async def _send(batches: Sequence[tuple[str, Sequence[Envelope[Any]]]], kafka: KafkaSettings) -> None:
    tracer = trace.get_tracer("crmpilot.demo")
    async with EventProducer(kafka, client_id="crmpilot-demo") as producer:
        for topic, events in batches:
            for event in events:
                with tracer.start_as_current_span(
                    f"send {topic}",
                    kind=SpanKind.PRODUCER,
                    attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
                ):
                    carrier: dict[str, str] = {}
                    propagate.inject(carrier)
                    await producer.send(topic, event, traceparent=carrier.get("traceparent"))


@dataclass(frozen=True, slots=True)
class _Task:
    """One AI task of the demo: the events sent and where their results land."""

    label: str
    spec: TaskSpec[Any]
    table: str
    events: Sequence[Envelope[Any]]
    targets_crm: str = "not input_skipped"
    """Which of its results have a CRM record to write (SQL condition on the fact table)."""

    @property
    def result_ids(self) -> list[str]:
        return [result_id_for(e.id, self.spec.name, self.spec.prompt.version) for e in self.events]


def _send_bad_records(kafka: KafkaSettings, nonce: str) -> list[str]:
    keys = [f"demo-bad-json-{nonce}", f"demo-bad-version-{nonce}"]
    producer = Producer({**kafka.librdkafka(), "enable.idempotence": True})
    producer.produce(CASE_TOPIC, key=keys[0], value=b"{this is not json")
    producer.produce(CASE_TOPIC, key=keys[1], value=b'{"type": "crm.case.created", "schemaversion": 99, "data": {}}')
    if producer.flush(30) != 0:
        raise typer.Exit(1)
    return keys


def _dlq_groups(kafka: KafkaSettings, keys: set[bytes]) -> dict[bytes, set[str]]:
    """For each of our bad records: the consumer groups that dead-lettered it."""
    consumer = Consumer(
        {**kafka.librdkafka(), "group.id": f"crmpilot-demo-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(CASE_TOPIC + ".dlq", timeout=10)
        parts = [TopicPartition(CASE_TOPIC + ".dlq", p, 0) for p in meta.topics[CASE_TOPIC + ".dlq"].partitions]
        consumer.assign(parts)
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
        found: dict[bytes, set[str]] = {k: set() for k in keys}
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 10
        while len(done) < len(parts) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            key, partition, offset = msg.key(), msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # a consumed record has both
            if isinstance(key, bytes) and key in found:
                group = dict(msg.headers() or []).get("crmpilot.consumer.group", b"?")
                found[key].add(group.decode() if isinstance(group, bytes) else "?")
            if offset + 1 >= ends[partition]:
                done.add(partition)
        return found
    finally:
        consumer.close()


def _count(cur: psycopg.Cursor[Any]) -> int:
    """The number a ``select count(...)`` answers."""
    row = cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY answers one row
    return int(row[0])


def _stored(conn: psycopg.Connection[Any], task: _Task) -> int:
    return _count(
        conn.execute(f"select count(*) from warehouse.{task.table} where result_id = any(%s)", (task.result_ids,))
    )


def _with_target(conn: psycopg.Connection[Any], task: _Task) -> int:
    sql = f"select count(*) from warehouse.{task.table} where result_id = any(%s) and {task.targets_crm}"
    return _count(conn.execute(sql, (task.result_ids,)))


def _decided(conn: psycopg.Connection[Any], result_ids: list[str]) -> int:
    return _count(
        conn.execute(
            "select count(distinct result_id) from warehouse.crm_write_audit where result_id = any(%s)", (result_ids,)
        )
    )


_CRM_STATUS = (
    "coalesce((select string_agg(distinct a.status, ',') from warehouse.crm_write_audit a where a.result_id = "
    "f.result_id), '-')"
)


def _ticket_table(conn: psycopg.Connection[Any], task: _Task, subjects: Mapping[str, str]) -> Table:
    rows = conn.execute(
        f"""select f.case_id, f.category, f.priority, f.sentiment, f.confidence_by_field->>'category',
                   f.review_decision, {_CRM_STATUS}
             from warehouse.fact_ticket_classification f where f.result_id = any(%s) order by f.case_id""",
        (task.result_ids,),
    ).fetchall()
    table = Table(title="Cases classified by ticket_classifier → crm_writer / warehouse_writer")
    for col in ("case", "subject", "category", "priority", "sentiment", "conf.", "review", "CRM"):
        table.add_column(col)
    for case_id, category, priority, sentiment, conf, review, status in rows:
        table.add_row(
            case_id, subjects.get(case_id, "")[:44], category, priority, sentiment, f"{float(conf):.2f}", review, status
        )
    return table


def _email_table(conn: psycopg.Connection[Any], task: _Task) -> Table:
    rows = conn.execute(
        f"""select f.case_id, f.summary, f.intent, f.sentiment, f.urgency, f.action_item_count, f.entity_count,
                   f.verified, f.confidence, f.review_decision, {_CRM_STATUS}
             from warehouse.fact_email_summary f where f.result_id = any(%s) order by f.case_id""",
        (task.result_ids,),
    ).fetchall()
    table = Table(title="Emails summarized by email_summarizer → Case.AI_Summary__c")
    for col in (
        "case",
        "summary",
        "intent",
        "sentiment",
        "urgency",
        "actions",
        "entities",
        "grounded",
        "conf.",
        "review",
        "CRM",
    ):
        table.add_column(col)
    for case_id, summary, intent, sentiment, urgency, actions, entities, verified, conf, review, status in rows:
        table.add_row(
            case_id or "-", summary[:60], intent, sentiment, urgency, str(actions), str(entities),
            "verified" if verified else "[red]unverified[/red]", f"{float(conf):.2f}", review, status,
        )  # fmt: skip
    return table


def _lead_table(conn: psycopg.Connection[Any], task: _Task, companies: Mapping[str, str]) -> Table:
    rows = conn.execute(
        f"""select f.request_id, f.score, f.band, f.result->'factors', f.risk_flags, f.confidence, f.review_decision,
                   {_CRM_STATUS}
             from warehouse.fact_request_score f where f.result_id = any(%s) order by f.score desc""",
        (task.result_ids,),
    ).fetchall()
    table = Table(title="Leads scored by request_scorer → Lead.AI_Score__c")
    for col in ("lead", "company", "score", "band", "top factors", "risk flags", "conf.", "review", "CRM"):
        table.add_column(col)
    for lead_id, score, band, factors, risks, conf, review, status in rows:
        top = ", ".join(f"{'+' if f['direction'] == 'up' else '-'}{f['weight']:g} {f['name']}" for f in factors[:3])
        table.add_row(
            lead_id,
            companies.get(lead_id, "")[:28],
            str(score),
            band,
            top,
            ", ".join(risks) or "-",
            f"{float(conf):.2f}",
            review,
            status,
        )
    return table


def _declared_tasks(specs: Iterable[EnrichmentSpec], sent: Mapping[str, Sequence[Envelope[Any]]]) -> list[_Task]:
    """The declared enrichments (CRMPILOT_ENRICHMENTS_DIR) that read the event types the demo sends: each a task of
    its own."""
    tasks = []
    for spec in specs:
        events = [e for batch in sent.values() for e in batch if e.type in spec.source.event_types]
        if events:
            tasks.append(_Task(f"{spec.name} (declared)".ljust(27), task_for(spec), "fact_enrichment", events))
    return tasks


def _declared_table(conn: psycopg.Connection[Any], task: _Task, spec: EnrichmentSpec) -> Table:
    rows = conn.execute(
        f"""select f.record_id, f.outputs, f.confidence_by_field, f.review_decision, {_CRM_STATUS}
             from warehouse.fact_enrichment f where f.result_id = any(%s) order by f.record_id""",
        (task.result_ids,),
    ).fetchall()
    where = f" → {spec.crm.object}.{', '.join(spec.crm.fields.values())}" if spec.crm else ""
    table = Table(title=f"Declared enrichment {spec.name} (bi.{spec.name}){where}")
    table.add_column("record")
    for name in spec.outputs:
        table.add_column(name)
    for col in ("review", "CRM"):
        table.add_column(col)
    for record_id, outputs, confidence, review, status in rows:
        cells = [
            f"{str(outputs.get(n, '-'))[:40]} ({float(confidence.get(n, 0)):.2f})" if n in outputs else "-"
            for n in spec.outputs
        ]
        table.add_row(record_id, *cells, review, status)
    return table


def _wait(conn: psycopg.Connection[Any], tasks: Sequence[_Task], timeout: float) -> None:
    """Show progress until every result is stored and every CRM write decided; exit 1 after ``timeout`` seconds."""
    all_ids = [rid for task in tasks for rid in task.result_ids]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars = [progress.add_task(task.label, total=len(task.events)) for task in tasks]
        t_crm = progress.add_task("CRM write decided (+ audited)", total=len(all_ids))
        deadline = time.monotonic() + timeout
        while True:
            stored = [_stored(conn, task) for task in tasks]
            targets, decided = sum(_with_target(conn, task) for task in tasks), _decided(conn, all_ids)
            for bar, n in zip(bars, stored, strict=True):
                progress.update(bar, completed=n)
            progress.update(t_crm, completed=decided, total=targets if sum(stored) == len(all_ids) else len(all_ids))
            if sum(stored) == len(all_ids) and decided == targets:
                return
            if time.monotonic() > deadline:
                console.print(
                    f"[red]timed out after {timeout:.0f} s: {sum(stored)}/{len(all_ids)} stored, "
                    f"{decided}/{targets} decided; see .run/logs/*.log[/red]"
                )
                raise typer.Exit(1)
            time.sleep(0.5)


@app.command()
def run(
    timeout: float = typer.Option(300.0, help="Seconds to wait for every record to be enriched."),
    bad_records: bool = typer.Option(True, help="Also send two malformed records, to show the dead-letter topic."),
) -> None:
    """Send the CRM's cases, emails and leads through the pipeline and report what was enriched."""
    kafka, db, sf_settings = KafkaSettings(), DatabaseSettings(), SalesforceSettings()
    sf = connect(sf_settings)
    records = fetch_case_records(sf)
    if not records:
        console.print("[red]the CRM has no cases; start the sandbox with `--seed demo` (infra/services.sh does)[/red]")
        raise typer.Exit(1)
    source = f"crm://{sf.sf_instance}"
    created = {r["Id"]: r["CreatedDate"] for r in records}
    cases = [
        e.model_copy(
            update={
                "id": _stable_id(e.subject, created[e.subject]),
                "type": "crm.case.created",
                "time": e.data.last_modified,
            }
        )
        for e in case_events(records, source=source)
    ]
    leads = list(sf.query_all_iter(LEAD_QUERY))
    tasks: tuple[_Task, ...] = (
        _Task("tickets classified + stored", CLASSIFY_TICKET, "fact_ticket_classification", cases),
        _Task(
            "emails summarized + stored ",
            SUMMARIZE_EMAIL,
            "fact_email_summary",
            email_events(sf.query_all_iter(EMAIL_QUERY), source=source),
            targets_crm="not input_skipped and case_id is not null",
        ),
        _Task("leads scored + stored      ", SCORE_REQUEST, "fact_request_score", lead_events(leads, source=source)),
    )
    registry = load_registry()
    sent: dict[str, Sequence[Envelope[Any]]] = {
        CASE_TOPIC: cases,
        EMAIL_TOPIC: tasks[1].events,
        LEAD_TOPIC: tasks[2].events,
    }
    declared = _declared_tasks(registry, sent)
    tasks = (*tasks, *declared)
    console.print(
        f"[bold]crmpilot demo[/bold]: read from the CRM at {sf_settings.instance_url}: {len(cases)} cases → "
        f"[cyan]{CASE_TOPIC}[/cyan], "
        f"{len(tasks[1].events)} emails → [cyan]{EMAIL_TOPIC}[/cyan], {len(tasks[2].events)} leads → "
        f"[cyan]{LEAD_TOPIC}[/cyan]"
    )
    asyncio.run(_send([(CASE_TOPIC, cases), (EMAIL_TOPIC, tasks[1].events), (LEAD_TOPIC, tasks[2].events)], kafka))
    bad_keys = _send_bad_records(kafka, uuid.uuid4().hex[:8]) if bad_records else []

    all_ids = [rid for task in tasks for rid in task.result_ids]
    with psycopg.connect(db.url.get_secret_value(), autocommit=True) as conn:
        _wait(conn, tasks, timeout)
        console.print(_ticket_table(conn, tasks[0], {r["Id"]: r.get("Subject") or "" for r in records}))
        console.print(_email_table(conn, tasks[1]))
        console.print(_lead_table(conn, tasks[2], {r["Id"]: r.get("Company") or "" for r in leads}))
        for task in declared:
            console.print(_declared_table(conn, task, registry.get(task.spec.name)))
        written: dict[str, int] = dict(conn.execute(
            """select review_decision, count(*) from bi.results where result_id = any(%(ids)s) and result_id in
                 (select result_id from warehouse.crm_write_audit where result_id = any(%(ids)s) and status = 'applied')
               group by 1""",
            {"ids": all_ids},
        ).fetchall())  # fmt: skip
        unverified = _count(
            conn.execute(
                "select count(*) from warehouse.fact_email_summary where result_id = any(%s) and not verified",
                (tasks[1].result_ids,),
            )
        )

    dlq = _dlq_groups(kafka, {k.encode() for k in bad_keys}) if bad_keys else {}
    set_aside = sum(1 for groups in dlq.values() if groups)
    groups = sorted(set().union(*dlq.values())) if dlq else []
    console.print(
        f"[green]{len(all_ids)} results stored with provenance ({len(cases)} tickets, {len(tasks[1].events)} emails, "
        f"{len(tasks[2].events)} leads{''.join(f', {len(t.events)} {t.spec.name}' for t in declared)}); CRM "
        f"records written: {written.get('auto_apply', 0)} as fact, "
        f"{written.get('suggest', 0)} as suggestions flagged for review (every decision audited); "
        f"{unverified} email summaries failed grounding; {set_aside}/{len(bad_keys)} bad records set aside on "
        f"{CASE_TOPIC}.dlq by {', '.join(groups) or 'no consumer group'}[/green]"
    )
    console.print(
        "\nWhere to look:\n"
        "  CRM sandbox   curl -s --cacert .run/sandbox-tls/ca.pem -H 'Authorization: Bearer "
        "sandbox-integration-token' \\\n"
        "                  "
        f"'{sf_settings.instance_url}/services/data/v59.0/query/?q=SELECT+Id,Subject,AI_Category__c,AI_Priority__c,AI_Summary__c+FROM+Case'\n"
        "  warehouse     PGPASSWORD=crmpilot psql -h 127.0.0.1 -p 55432 -U crmpilot crmpilot -c 'select * from "
        "bi.automation_rate_daily'\n"
        "  topics        infra/kafka-cli.sh topics --list\n"
        f"  dead letters  infra/kafka-cli.sh console-consumer --topic {CASE_TOPIC}.dlq --from-beginning "
        "--property print.headers=true\n"
        "  logs          .run/logs/<service>.log      stop everything: make stop"
    )
