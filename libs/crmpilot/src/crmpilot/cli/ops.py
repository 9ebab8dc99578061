"""Operator commands: ``status``, ``lag``, ``dlq list|show|replay``, ``produce``, ``trace``.

Thin over :mod:`crmpilot.ops`: options in, a table (or ``--json``) out, errors
as a one-line message and an exit code (1: the operation failed or found a
problem; 2: the command line or an input file is wrong). Mounted in
:mod:`crmpilot.cli.main` as ``app.add_typer(dlq_app, name="dlq")`` and
``app.command("status")(status)`` etc.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import typer
from confluent_kafka import TopicPartition
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crmpilot.enrichments import SpecError, load_registry
from crmpilot.errors import CrmpilotError
from crmpilot.ops.broker import admin_client, describe_cluster, reader
from crmpilot.ops.dlq import DeadLetter, count_by_error, preview, read_dead_letters
from crmpilot.ops.errors import EventFileError, InvalidSelection, TopicNotFound
from crmpilot.ops.lag import GroupLag, group_lag, list_groups
from crmpilot.ops.produce import produce_envelopes
from crmpilot.ops.replay import ReplayReport, load_books, replay
from crmpilot.ops.samples import SAMPLE_TYPES, load_events, sample_events
from crmpilot.ops.sender import Sent
from crmpilot.ops.settings import OpsSettings
from crmpilot.ops.status import collect_status, service_endpoints
from crmpilot.ops.trail import event_trail
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming.topics import load_topics
from crmpilot.telemetry.setup import setup_tracing
from crmpilot.warehouse.connection import connect

__all__ = ["dlq_app", "status", "lag", "produce", "trace"]

dlq_app = typer.Typer(
    help="Dead-letter topics: count, inspect and replay the records consumers gave up on.", no_args_is_help=True
)

_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")
_TIMEOUT = typer.Option(
    None, "--timeout", help="Seconds to wait for Kafka/PostgreSQL [default: CRMPILOT_OPS_TIMEOUT_S or 15]."
)
_USAGE_ERRORS = (InvalidSelection, EventFileError)


def _console() -> Console:
    probe = Console()
    return Console(width=None if probe.is_terminal else 160)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _fail(exc: BaseException) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2 if isinstance(exc, _USAGE_ERRORS) else 1) from exc


@contextmanager
def _errors() -> Iterator[None]:
    """Turn crmpilot's errors into a message and an exit code."""
    try:
        yield
    except CrmpilotError as exc:
        _fail(exc)


def _timeout(value: float | None, settings: OpsSettings) -> float:
    return settings.timeout_s if value is None else value


def _endpoints(values: list[str], settings: OpsSettings, enrichments: Iterable[str] = ()) -> dict[str, str]:
    endpoints = {**service_endpoints(enrichments), **settings.endpoints}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            typer.echo(
                f"error: --endpoint {value!r}: expected NAME=URL, e.g. ticket_classifier=http://127.0.0.1:9101",
                err=True,
            )
            raise typer.Exit(2)
        endpoints[name] = url
    return endpoints


# --- status, lag -----------------------------------------------------------------------


def status(
    endpoint: list[str] = typer.Option(
        [],
        "--endpoint",
        help="NAME=URL of a service's health server (repeatable) [default: from CRMPILOT_<SERVICE>_HTTP_PORT and "
        "CRMPILOT_OPS_ENDPOINTS].",
    ),
    group_prefix: str | None = typer.Option(
        None, "--group-prefix", help="Groups to show [default: CRMPILOT_OPS_GROUP_PREFIX or crmpilot]."
    ),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Kafka reachable? topics present? each crmpilot group's state, members and lag; services' /readyz.
    Exit 1 if anything is wrong."""
    settings = OpsSettings()
    kafka = KafkaSettings()
    registry, registry_error = None, None
    try:
        registry = load_registry()
    except SpecError as exc:
        registry_error = str(exc)
    with _errors():
        report = collect_status(
            kafka,
            load_topics(),
            group_prefix=group_prefix or settings.group_prefix,
            endpoints=_endpoints(endpoint, settings, [s.name for s in registry or ()]),
            timeout=_timeout(timeout, settings),
            registry=registry,
            registry_error=registry_error,
        )
    if as_json:
        _print_json({**_plain(report), "healthy": report.healthy})
        raise typer.Exit(0 if report.healthy else 1)
    console = _console()
    if report.kafka is None:
        console.print(f"[red]Kafka  {kafka.bootstrap}: DOWN[/red] {report.kafka_error}")
    else:
        console.print(
            f"[green]Kafka  {kafka.bootstrap}: up[/green] ({report.kafka.brokers} broker(s), "
            f"{len(report.kafka.topics)} topics)"
        )
        missing = [t.name for t in report.topics if not t.present]
        present = len(report.topics) - len(missing)
        colour = "green" if not missing else "red"
        console.print(
            f"[{colour}]Topics {present}/{len(report.topics)} declared topics present[/{colour}]"
            + (f"; missing: {', '.join(missing)} (run `crmpilot topics apply`)" if missing else "")
        )
        table = Table(title="Consumer groups")
        for col in ("group", "state", "members", "partitions", "lag", "no commit yet"):
            table.add_column(
                col, justify="right" if col in {"members", "partitions", "lag", "no commit yet"} else "left"
            )
        for g in report.groups:
            table.add_row(
                g.group, g.state, str(len(g.members)), str(len(g.partitions)), str(g.total_lag), str(g.uncommitted)
            )
        for name, error in report.group_errors.items():
            table.add_row(name, f"[red]{error}[/red]", "", "", "", "")
        console.print(table if report.groups or report.group_errors else "No crmpilot consumer groups yet.")
    if report.enrichments_error:
        console.print(f"[red]Enrichments: the specs do not load[/red]\n{escape(report.enrichments_error)}")
    elif report.enrichments:
        table = Table(title="Enrichments (CRMPILOT_ENRICHMENTS_DIR)")
        for col in ("enrichment", "version", "reads", "writes", "group", "enricher", "lag"):
            table.add_column(col, justify="right" if col == "lag" else "left")
        for e in report.enrichments:
            running = f"[green]{e.members} consuming[/green]" if e.consuming else "[yellow]not running[/yellow]"
            table.add_row(
                e.name,
                str(e.version),
                ", ".join(e.topics),
                e.output_topic,
                e.group,
                running,
                "" if e.lag is None else str(e.lag),
            )
        console.print(table)
    if report.services:
        table = Table(title="Services (/readyz)")
        for col in ("service", "url", "ready", "detail"):
            table.add_column(col)
        for s in report.services:
            table.add_row(s.service, s.url, "[green]yes[/green]" if s.ready else "[red]no[/red]", s.detail)
        console.print(table)
    else:
        console.print(
            "Services: no health endpoints configured (set CRMPILOT_<SERVICE>_HTTP_PORT as the services do, "
            "CRMPILOT_OPS_ENDPOINTS, or pass --endpoint NAME=URL)."
        )
    raise typer.Exit(0 if report.healthy else 1)


def lag(
    group: list[str] = typer.Option(
        [], "--group", "-g", help="Group(s) to show [default: every group with the crmpilot prefix]."
    ),
    group_prefix: str | None = typer.Option(
        None, "--group-prefix", help="Prefix of the groups to show without --group."
    ),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Committed vs log-end offset per partition, from the broker (as `kafka-consumer-groups --describe` shows it)."""
    settings = OpsSettings()
    kafka = KafkaSettings()
    wait = _timeout(timeout, settings)
    with _errors():
        admin = admin_client(kafka, "lag")
        describe_cluster(admin, kafka.bootstrap, wait)  # fail clearly when no broker answers
        names = group or list_groups(admin, group_prefix or settings.group_prefix, wait)
        groups = [group_lag(admin, name, wait) for name in names]
    if as_json:
        _print_json([{**_plain(g), "total_lag": g.total_lag} for g in groups])
        return
    console = _console()
    if not groups:
        console.print(f"No consumer groups starting with {group_prefix or settings.group_prefix!r}.")
    for g in groups:
        console.print(_lag_table(g))


def _lag_table(g: GroupLag) -> Table:
    table = Table(title=f"{g.group} ({g.state}, {len(g.members)} member(s), lag {g.total_lag})", title_justify="left")
    for col in ("topic", "partition", "current-offset", "log-end-offset", "lag", "consumer-id", "client-id", "host"):
        table.add_column(
            col, justify="right" if col in {"partition", "current-offset", "log-end-offset", "lag"} else "left"
        )
    for p in g.partitions:
        table.add_row(
            p.topic, str(p.partition), "-" if p.committed is None else str(p.committed), str(p.end),
            "-" if p.lag is None else str(p.lag), p.member_id or "-", p.client_id or "-", p.host or "-",
        )  # fmt: skip
    return table


# --- dlq ---------------------------------------------------------------------------------


def _dlq_topics(kafka: KafkaSettings, settings: OpsSettings, topics: list[str], wait: float) -> dict[str, int]:
    cluster = describe_cluster(admin_client(kafka, "dlq"), kafka.bootstrap, wait)
    for t in topics:
        if t not in cluster.topics:
            raise TopicNotFound(t)
    names = topics or [t for t in cluster.topics if t.endswith(settings.dlq_suffix)]
    return {t: cluster.topics[t] for t in sorted(names)}


@dlq_app.command("list")
def dlq_list(
    topic: list[str] = typer.Option(
        [], "--topic", "-t", help="Dead-letter topic(s) [default: every topic ending in .dlq]."
    ),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Count dead letters per topic and error class, and how many are not replayed yet."""
    settings, kafka = OpsSettings(), KafkaSettings()
    wait = _timeout(timeout, settings)
    with _errors():
        topics = _dlq_topics(kafka, settings, topic, wait)
        consumer = reader(kafka, "dlq-list")
        books_reader = reader(kafka, "dlq-list-books", **{"group.id": settings.replay_group})
        summary: list[dict[str, Any]] = []
        try:
            for name, partitions in topics.items():
                parts = list(range(partitions))
                marks = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=wait) for p in parts}
                records = list(read_dead_letters(consumer, name, marks, timeout=wait * 4))
                books = load_books(books_reader, name, parts, wait)
                pending = sum(not books[r.partition].replayed(r.offset) for r in records)
                summary.append(
                    {"topic": name, "records": len(records), "not_replayed": pending, "errors": count_by_error(records)}
                )
        finally:
            consumer.close()
            books_reader.close()
    if as_json:
        _print_json(summary)
        return
    table = Table(title="Dead-letter topics")
    for col in ("topic", "records", "not replayed", "error class", "code", "count"):
        table.add_column(col, justify="right" if col in {"records", "not replayed", "count"} else "left")
    for s in summary:
        errors = s["errors"] or [None]
        for i, e in enumerate(errors):
            head = (s["topic"], str(s["records"]), str(s["not_replayed"])) if i == 0 else ("", "", "")
            table.add_row(*head, *((e.error_class, e.error_code, str(e.count)) if e else ("-", "-", "0")))
    _console().print(table)


def _shown(r: DeadLetter, replayed: bool, width: int) -> dict[str, Any]:
    return {
        "position": r.position,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": None if r.key is None else r.key.decode("utf-8", "backslashreplace"),
        "headers": r.crmpilot_headers(),
        "replayed": replayed,
        "payload_preview": preview(r.value, width),
        "payload_bytes": len(r.value or b""),
    }


@dlq_app.command("show")
def dlq_show(
    topic: str = typer.Argument(..., help="The dead-letter topic, e.g. crm.case.events.dlq."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show the newest N records."),
    partition: int | None = typer.Option(None, "--partition", "-p", help="Only this partition."),
    width: int = typer.Option(200, "--preview", min=10, help="Characters of payload to show."),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Show the newest dead letters with their crmpilot.error.* / source headers and a payload preview."""
    settings, kafka = OpsSettings(), KafkaSettings()
    wait = _timeout(timeout, settings)
    with _errors():
        partitions = _dlq_topics(kafka, settings, [topic], wait)[topic]
        parts = [partition] if partition is not None else list(range(partitions))
        if partition is not None and partition not in range(partitions):
            raise InvalidSelection(f"--partition {partition}: {topic} has partitions 0..{partitions - 1}")
        consumer = reader(kafka, "dlq-show")
        books_reader = reader(kafka, "dlq-show-books", **{"group.id": settings.replay_group})
        try:
            ranges = {}
            for p in parts:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=wait)
                ranges[p] = (max(low, high - limit), high)
            records = list(read_dead_letters(consumer, topic, ranges, timeout=wait * 2))
            books = load_books(books_reader, topic, parts, wait)
        finally:
            consumer.close()
            books_reader.close()
    newest = sorted(records, key=lambda r: (r.timestamp or datetime.min, r.partition, r.offset))[-limit:]
    shown = [_shown(r, books[r.partition].replayed(r.offset), width) for r in newest]
    if as_json:
        _print_json(shown)
        return
    console = _console()
    if not shown:
        console.print(f"{topic} holds no dead letters.")
    for s in shown:
        h = {k: escape(v) for k, v in s["headers"].items()}
        state = "replayed" if s["replayed"] else "not replayed"
        console.print(
            f"[bold]{escape(topic)} {s['position']}[/bold]  key={escape(str(s['key']))}  {s['timestamp']}  "
            f"[dim]{state}[/dim]\n"
            f"  error   {h.get('crmpilot.error.class', '?')} ({h.get('crmpilot.error.code', '?')}): "
            f"{h.get('crmpilot.error.message', '')}\n"
            f"  source  {h.get('crmpilot.source.topic', '?')} [{h.get('crmpilot.source.partition', '?')}] "
            f"@{h.get('crmpilot.source.offset', '?')}"
            f"  group {h.get('crmpilot.consumer.group', '?')}  attempts {h.get('crmpilot.attempts', '?')}"
            f"  replays {h.get('crmpilot.replay.count', '0')}  failed at {h.get('crmpilot.failed_at', '?')}\n"
            f"  payload ({s['payload_bytes']} bytes) {escape(s['payload_preview'])}",
            highlight=False,
        )


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(..., help="The dead-letter topic, e.g. crm.case.events.dlq."),
    offset: list[str] = typer.Option(
        [],
        "--offset",
        "-o",
        help="PARTITION:OFFSET of a record to replay (repeatable; OFFSET alone on a one-partition topic).",
    ),
    all_: bool = typer.Option(False, "--all", help="Replay every record not replayed yet."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed; send and remember nothing."),
    max_replays: int | None = typer.Option(
        None,
        "--max-replays",
        min=1,
        help="Refuse records already replayed this many times [default: CRMPILOT_OPS_MAX_REPLAYS or 3].",
    ),
    group: str | None = typer.Option(
        None, "--group", help="Group remembering what was replayed [default: crmpilot-dlq-replay]."
    ),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Send dead letters back to their source topic (original key, value, headers + crmpilot.replay.count), once.

    Replayed records are remembered as the replay group's committed offsets, so a second run sends nothing again;
    a record that reached the replay limit is refused and reported. Exit 1 if a record could not be sent.
    """
    if bool(offset) == all_:
        typer.echo("error: give either --offset PARTITION:OFFSET (repeatable) or --all", err=True)
        raise typer.Exit(2)
    settings, kafka = OpsSettings(), KafkaSettings()
    console = _console()
    with _errors():
        setup_tracing("crmpilot-cli")
        with Progress(
            TextColumn("replaying {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), disable=as_json or dry_run,
        ) as progress:  # fmt: skip
            task = progress.add_task(topic, total=None)

            def on_plan(n: int) -> None:
                progress.update(task, total=n)

            def on_sent(_s: Sent) -> None:
                progress.advance(task)

            report = replay(
                kafka,
                topic,
                offsets=offset,
                group=group or settings.replay_group,
                max_replays=max_replays or settings.max_replays,
                dry_run=dry_run,
                timeout=_timeout(timeout, settings),
                on_plan=on_plan,
                on_sent=on_sent,
            )
    if as_json:
        _print_json({**_plain(report), "counts": _counts(report)})
    else:
        _print_replay(console, report)
    raise typer.Exit(1 if report.count("failed") else 0)


def _counts(report: ReplayReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in report.decisions:
        counts[d.action] = counts.get(d.action, 0) + 1
    return counts


def _print_replay(console: Console, report: ReplayReport) -> None:
    verb = "would replay" if report.dry_run else "replayed"
    table = Table(title=f"{report.topic}: {verb} (limit {report.max_replays} replays, remembered by {report.group})")
    for col in ("record", "action", "source topic", "replays so far", "detail"):
        table.add_column(col)
    styles = {"replayed": "green", "replay": "cyan", "failed": "red", "refused": "yellow"}
    for d in report.decisions:
        style = styles.get(d.action, "dim")
        action = "would replay" if d.action == "replay" else d.action
        table.add_row(d.position, f"[{style}]{action}[/{style}]", d.source_topic or "-", str(d.replay_count), d.detail)
    console.print(table if report.decisions else f"{report.topic}: nothing to replay.")
    console.print(
        ", ".join(f"{n} {'would replay' if a == 'replay' else a}" for a, n in sorted(_counts(report).items()))
        or "0 records"
    )


# --- produce, trace -----------------------------------------------------------------------


def produce(
    topic: str = typer.Argument(..., help="Topic to send to, e.g. crm.case.events."),
    event_type: str | None = typer.Option(
        None, "--type", help=f"Event type of --sample or of data-only file lines ({', '.join(SAMPLE_TYPES)}…)."
    ),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="JSON Lines: whole envelopes, or the data of --type events."
    ),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Send N sample events of --type."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the samples' random choices."),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Send events to a topic (from a file or samples), each in a `send {topic}` span; print where they went."""
    if (file is None) == (sample is None):
        typer.echo("error: give either --file FILE or --sample N", err=True)
        raise typer.Exit(2)
    if sample is not None and event_type is None:
        typer.echo(f"error: --sample needs --type (one of {', '.join(SAMPLE_TYPES)})", err=True)
        raise typer.Exit(2)
    settings, kafka = OpsSettings(), KafkaSettings()
    with _errors():
        setup_tracing("crmpilot-cli")
        events = (
            load_events(file, event_type)
            if file is not None
            else sample_events(event_type or "", sample or 0, seed=seed)
        )
        sent = produce_envelopes(kafka, topic, events, timeout=_timeout(timeout, settings))
    rows: list[dict[str, Any]] = [
        {
            "event_id": e.id,
            "type": e.type,
            "key": e.subject,
            "partition": s.partition,
            "offset": s.offset,
            "trace_id": s.trace_id,
            "error": s.error,
        }
        for e, s in zip(events, sent, strict=True)
    ]
    if as_json:
        _print_json(rows)
    else:
        table = Table(title=f"{len(rows)} event(s) sent to {topic}")
        for col in ("event id", "type", "key", "partition", "offset", "trace id"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["event_id"], r["type"], r["key"], str(r["partition"]), str(r["offset"]), r["trace_id"] or "-"
            )
        _console().print(table)
    raise typer.Exit(1 if any(r["error"] for r in rows) else 0)


def trace(
    event_id: str = typer.Argument(..., help="A source event id (or a result event id)."),
    as_json: bool = _JSON,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Where an event went: the event as stored, its results, CRM writes, dead-letter entries and trace ids."""
    settings = OpsSettings()
    with _errors(), connect(DatabaseSettings(), timeout=_timeout(timeout, settings)) as conn:
        found = event_trail(conn, event_id)
    if as_json:
        _print_json({**_plain(found), "trace_ids": list(found.trace_ids), "found": found.found})
        raise typer.Exit(0 if found.found else 1)
    console = _console()
    if not found.found:
        console.print(
            f"[red]no trace of event {event_id} in the warehouse[/red] (not consumed yet? check `crmpilot lag`)"
        )
        raise typer.Exit(1)
    raw = found.raw_event
    console.print(
        f"[bold]event {event_id}[/bold]"
        + (
            f"  {raw['type']} about {raw['subject']}, read from {raw['topic']} [{raw['kafka_partition']}] "
            f"@{raw['kafka_offset']} at {raw['received_at']}"
            if raw
            else "  (source event not stored)"
        )
    )
    console.print(f"trace id(s): {', '.join(found.trace_ids) or '-'}")
    _rows(
        console,
        "Results",
        found.results,
        (
            "fact_table",
            "result_id",
            "review_decision",
            "model",
            "result_topic",
            "result_partition",
            "result_offset",
            "trace_id",
            "written_at",
        ),
    )
    _rows(
        console,
        "CRM writes",
        found.crm_writes,
        ("result_id", "sobject", "record_id", "field", "before_value", "after_value", "status", "reason", "applied_at"),
    )
    _rows(
        console,
        "Dead letters",
        found.dead_letters,
        (
            "consumer_group",
            "topic",
            "kafka_partition",
            "kafka_offset",
            "error_class",
            "error_code",
            "error_message",
            "failed_at",
        ),
    )


def _rows(console: Console, title: str, rows: tuple[dict[str, Any], ...], columns: tuple[str, ...]) -> None:
    if not rows:
        console.print(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)
