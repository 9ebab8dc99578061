"""`crmpilot demo`: send the CRM's cases through the running pipeline and show what came back.

Reads every Case from the CRM (the sandbox's demo org by default), sends one
``crm.case.created`` event per case plus two deliberately bad records, waits
with a progress bar until each case has its result in the warehouse and its
CRM write decided, then prints what was enriched and where to look.
Event ids are derived from the case and its creation time, so running the demo
twice sends the same events: nothing is classified or written twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
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
from crmpilot.events import CaseEvent, Envelope, result_id_for
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import EventProducer
from crmpilot.tasks import CLASSIFY_TICKET

app = typer.Typer(help="Run the demo against the running services (see `make demo`).", no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 150)

CASE_TOPIC = "crm.case.events"
_NAMESPACE = uuid.UUID("6f1d3c1e-9a57-4d2b-8a8e-2f4f3f0c9b11")


def _stable_id(event: Envelope[CaseEvent], created: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event.subject}:{created}"))


async def _send(events: list[Envelope[CaseEvent]], kafka: KafkaSettings) -> None:
    tracer = trace.get_tracer("crmpilot.demo")
    async with EventProducer(kafka, client_id="crmpilot-demo") as producer:
        for event in events:
            with tracer.start_as_current_span(f"send {CASE_TOPIC}", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka", "messaging.destination.name": CASE_TOPIC}):
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                await producer.send(CASE_TOPIC, event, traceparent=carrier.get("traceparent"))


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
    consumer = Consumer({**kafka.librdkafka(), "group.id": f"crmpilot-demo-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
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
            if msg.key() in found:
                group = dict(msg.headers() or []).get("crmpilot.consumer.group", b"?")
                found[msg.key()].add(group.decode())
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return found
    finally:
        consumer.close()


def _progress(conn: psycopg.Connection[Any], result_ids: list[str]) -> tuple[int, int]:
    stored = conn.execute("select count(*) from warehouse.fact_ticket_classification where result_id = any(%s)", (result_ids,)).fetchone()
    decided = conn.execute("select count(distinct result_id) from warehouse.crm_write_audit where result_id = any(%s)", (result_ids,)).fetchone()
    return int(stored[0]), int(decided[0])  # type: ignore[index]


@app.command()
def run(
    timeout: float = typer.Option(300.0, help="Seconds to wait for every case to be enriched."),
    bad_records: bool = typer.Option(True, help="Also send two malformed records, to show the dead-letter topic."),
) -> None:
    """Send the CRM's cases through the pipeline and report what was enriched."""
    kafka, db, sf_settings = KafkaSettings(), DatabaseSettings(), SalesforceSettings()
    sf = connect(sf_settings)
    records = fetch_case_records(sf)
    if not records:
        console.print("[red]the CRM has no cases; start the sandbox with `--seed demo` (infra/services.sh does)[/red]")
        raise typer.Exit(1)
    created = {r["Id"]: r["CreatedDate"] for r in records}
    events = [e.model_copy(update={"id": _stable_id(e, created[e.subject]), "type": "crm.case.created", "time": e.data.last_modified}) for e in case_events(records, source=f"crm://{sf.sf_instance}")]
    result_ids = {result_id_for(e.id, CLASSIFY_TICKET.name, CLASSIFY_TICKET.prompt.version): e for e in events}
    console.print(f"[bold]crmpilot demo[/bold]: {len(events)} cases read from the CRM at {sf_settings.instance_url}; sending them to [cyan]{CASE_TOPIC}[/cyan]")
    asyncio.run(_send(events, kafka))
    bad_keys = _send_bad_records(kafka, uuid.uuid4().hex[:8]) if bad_records else []

    with psycopg.connect(db.url.get_secret_value(), autocommit=True) as conn, Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console
    ) as progress:
        t_store = progress.add_task("classified + stored in warehouse", total=len(events))
        t_crm = progress.add_task("CRM write decided (+ audited)   ", total=len(events))
        deadline = time.monotonic() + timeout
        while True:
            stored, decided = _progress(conn, list(result_ids))
            progress.update(t_store, completed=stored)
            progress.update(t_crm, completed=decided)
            if stored == decided == len(events):
                break
            if time.monotonic() > deadline:
                console.print(f"[red]timed out after {timeout:.0f} s: {stored}/{len(events)} stored, {decided}/{len(events)} decided; see .run/logs/*.log[/red]")
                raise typer.Exit(1)
            time.sleep(0.5)
        rows = conn.execute(
            """select f.case_id, f.category, f.priority, f.sentiment, f.confidence_by_field->>'category', f.review_decision,
                      coalesce((select string_agg(distinct a.status, ',') from warehouse.crm_write_audit a where a.result_id = f.result_id), '-'),
                      f.trace_id
               from warehouse.fact_ticket_classification f where f.result_id = any(%s) order by f.case_id""",
            (list(result_ids),),
        ).fetchall()

    subjects = {r["Id"]: r.get("Subject") or "" for r in records}
    table = Table(title="Cases enriched by ticket_classifier → crm_writer / warehouse_writer")
    for col in ("case", "subject", "category", "priority", "sentiment", "conf.", "review", "CRM"):
        table.add_column(col)
    for case_id, category, priority, sentiment, conf, review, status, _trace in rows:
        table.add_row(case_id, subjects.get(case_id, "")[:44], category, priority, sentiment, f"{float(conf):.2f}", review, status)
    console.print(table)
    applied = sum(1 for r in rows if "applied" in r[6].split(","))
    dlq = _dlq_groups(kafka, {k.encode() for k in bad_keys}) if bad_keys else {}
    set_aside = sum(1 for groups in dlq.values() if groups)
    groups = sorted(set().union(*dlq.values())) if dlq else []
    console.print(
        f"[green]{len(rows)} cases classified and stored with provenance; {applied} CRM records carry their result "
        f"(the rest suggested for review or skipped, each audited); {set_aside}/{len(bad_keys)} bad records set aside on "
        f"{CASE_TOPIC}.dlq by {', '.join(groups) or 'no consumer group'}[/green]"
    )
    console.print(
        "\nWhere to look:\n"
        f"  CRM sandbox   curl -s --cacert .run/sandbox-tls/ca.pem -H 'Authorization: Bearer sandbox-integration-token' \\\n"
        f"                  '{sf_settings.instance_url}/services/data/v59.0/query/?q=SELECT+Id,Subject,AI_Category__c,AI_Priority__c+FROM+Case'\n"
        "  warehouse     PGPASSWORD=crmpilot psql -h 127.0.0.1 -p 55432 -U crmpilot crmpilot -c 'select * from bi.ticket_volume_daily'\n"
        "  topics        infra/kafka-cli.sh topics --list\n"
        f"  dead letters  infra/kafka-cli.sh console-consumer --topic {CASE_TOPIC}.dlq --from-beginning --property print.headers=true\n"
        "  logs          .run/logs/<service>.log      stop everything: make stop"
    )
