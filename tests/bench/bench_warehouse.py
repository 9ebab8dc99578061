"""Warehouse writes: rows/s of a row-by-row sink vs warehouse_writer's batches, and of a replay.

The same N ticket classifications (full provenance, built with the event models
as ``ticket_classifier`` builds them) and their N source case events, that is
2N rows, are written into a throwaway database (``crmpilot_bench_<pid>``,
migrated with the packaged migrations and dropped afterwards; the writer's SQL
names the ``warehouse`` schema, so a schema of its own would not do):

(a) *row by row*, the naive sink: one ``INSERT … ON CONFLICT DO NOTHING`` per
    row, each in a transaction of its own (``PostgresWarehouse`` called with one
    record at a time);
(b) *batched*, exactly as ``warehouse_writer`` runs: its handler
    (:class:`warehouse_writer.handler.WarehouseWriter`) with the service's default
    batch size, batch delay and records in flight, on a ``PostgresWarehouse``
    pool as its bootstrap opens it; results and source events interleaved;
(c) *replay*: (b)'s records again (a redelivery): no row may be added or changed.

Tables are emptied between (a) and (b). After each run the row counts are
checked and every row is compared with what the other run wrote (a digest of
all columns but the insert time); any difference fails the benchmark.
``python -m tests.bench.bench_warehouse --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from crmpilot.events import Envelope, TicketClassification, result_id_for
from crmpilot.llm import input_hash
from crmpilot.llm.client import TaskRun
from crmpilot.llm.pricing import DEFAULT_PRICES
from crmpilot.settings import DatabaseSettings
from crmpilot.streaming import MessageContext
from crmpilot.tasks import CLASSIFY_TICKET, ticket_payload
from crmpilot.tasks.taxonomy import Priority
from crmpilot.warehouse import KafkaPosition, PostgresWarehouse, connect
from tests.bench.workload import case_events
from tests.dbkit import throwaway_database
from warehouse_writer.handler import WarehouseWriter
from warehouse_writer.settings import Settings as WriterSettings

__all__ = ["Figures", "main", "run"]

SOURCE_TOPIC = "crm.case.events"
RESULT_TOPIC = "ai.ticket.classified"
PARTITIONS = 12
_TABLES = {
    "fact_ticket_classification": ("result_id", "written_at"),
    "raw_events": ("event_id", "received_at"),
}
_LABELS: tuple[tuple[str, ...], tuple[Priority, ...]] = (
    ("Payments", "Login", "Billing", "Shipping"),
    ("Low", "Medium", "High", "Urgent"),
)


@dataclass(frozen=True, slots=True)
class Figures:
    """What one benchmark run measured; ``rows`` = results + source events."""

    results: int
    rows: int
    naive_s: float
    batched_s: float
    replay_s: float
    batches: int
    batch_size: int
    max_in_flight: int

    @property
    def naive_rows_per_s(self) -> float:
        return self.rows / self.naive_s

    @property
    def batched_rows_per_s(self) -> float:
        return self.rows / self.batched_s

    @property
    def replay_rows_per_s(self) -> float:
        return self.rows / self.replay_s

    def lines(self) -> Iterator[str]:
        yield (
            f"Warehouse writes: {self.results} ticket classifications + {self.results} source events = "
            f"{self.rows} rows, "
            "throwaway database on the stack's PostgreSQL."
        )
        yield ""
        yield "| writer | rows | seconds | rows/s | new rows |"
        yield "|---|---:|---:|---:|---:|"
        yield (
            f"| (a) row by row: one INSERT … ON CONFLICT per row, one transaction each | {self.rows} | "
            f"{self.naive_s:.2f} | {self.naive_rows_per_s:,.0f} | {self.rows} |"
        )
        yield (
            f"| (b) warehouse_writer batches (batch_size {self.batch_size}, {self.max_in_flight} in flight; "
            f"{self.batches} batches) "
            f"| {self.rows} | {self.batched_s:.2f} | {self.batched_rows_per_s:,.0f} | {self.rows} |"
        )
        yield (
            f"| (c) replay of (b): the same records again | {self.rows} | {self.replay_s:.2f} | "
            f"{self.replay_rows_per_s:,.0f} | 0 |"
        )
        yield ""
        yield f"Batched vs row by row: {self.batched_rows_per_s / self.naive_rows_per_s:.1f}× the rows/s."
        yield "Row counts checked after each run; (a) and (b) wrote identical rows; the replay added and changed none."


def records(n: int, *, tag: str) -> list[tuple[Envelope[Any], KafkaPosition]]:
    """``n`` case events and their ``n`` classifications, interleaved, with the Kafka position each was read from."""
    spec = CLASSIFY_TICKET
    base = datetime.now(UTC) - timedelta(days=1)
    out: list[tuple[Envelope[Any], KafkaPosition]] = []
    offsets = [0] * PARTITIONS
    for i, case in enumerate(case_events(n, keys=max(1, n // 5), tag=tag)):
        case = case.model_copy(update={"time": base + timedelta(seconds=i)})
        partition = i % PARTITIONS
        offset = offsets[partition]
        offsets[partition] += 1
        tokens_in, tokens_out = 380 + i % 90, 60 + i % 25
        run: TaskRun[Any] = TaskRun(  # only its provenance is used: no output
            output=None,
            provider="openai",
            model="gpt-4o-mini",
            model_version="gpt-4o-mini-2024-07-18",
            prompt_id=spec.prompt.id,
            prompt_version=spec.prompt.version,
            prompt_hash=spec.prompt.hash,
            input_hash=input_hash(ticket_payload(case.data)),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=DEFAULT_PRICES.cost("openai", "gpt-4o-mini", tokens_in, tokens_out),
            latency_ms=600.0 + i % 400,
            attempts=1,
            cache_hit=i % 10 == 0,
            trace_id=f"{i:032x}",
        )
        confidence = {
            "category": 0.5 + (i % 50) / 100,
            "priority": 0.6 + (i % 40) / 100,
            "sentiment": 0.8,
            "language": 0.99,
        }
        result = TicketClassification(
            result_id=result_id_for(case.id, spec.name, spec.prompt.version),
            review="auto_apply" if confidence["category"] >= 0.8 else "suggest",
            provenance=run.provenance(
                source_topic=SOURCE_TOPIC,
                source_partition=partition,
                source_offset=offset,
                source_event_id=case.id,
                event_time=case.time,
                processed_at=case.time + timedelta(seconds=2),
            ),
            case_id=case.data.case_id,
            category=_LABELS[0][i % 4],
            priority=_LABELS[1][i % 4],
            sentiment="negative",
            language="en",
            queue="billing",
            escalate=i % 17 == 0,
            escalation_reason="customer asked twice" if i % 17 == 0 else None,
            confidence=confidence,
            rationale="The customer reports a declined card and asks for a call back.",
        )
        event = Envelope[TicketClassification](
            id=result.result_id,
            source="crmpilot/ticket_classifier",
            type=RESULT_TOPIC,
            schemaversion=1,
            subject=result.case_id,
            time=result.provenance.processed_at,
            data=result,
        )
        out.append((case, KafkaPosition(SOURCE_TOPIC, partition, offset)))
        out.append((event, KafkaPosition(RESULT_TOPIC, partition, offset)))
    return out


def run(n: int, server_url: str | None = None) -> Figures:
    """Measure (a), (b) and (c) with ``n`` results; raises ``AssertionError`` if any row is missing or differs."""
    server_url = server_url or DatabaseSettings().url.get_secret_value()
    batch = records(n, tag=f"whbench{os.getpid()}")
    writer_settings = WriterSettings()
    with throwaway_database(server_url, "crmpilot_bench") as db, connect(db) as conn:
        with PostgresWarehouse.connect(db, max_size=1) as warehouse:
            warehouse.check()
            started = time.perf_counter()
            new = 0
            for (
                envelope,
                position,
            ) in batch:  # the naive sink: one record, one statement, one transaction
                if envelope.type.startswith("ai."):
                    new += warehouse.write_results([(envelope, position)])
                else:
                    new += warehouse.write_raw_events([(envelope, position)])
            naive_s = time.perf_counter() - started
        assert new == 2 * n, f"row by row: {new} new rows, expected {2 * n}"
        _check_counts(conn, n, "row by row")
        naive_digest = _digest(conn)
        conn.execute("truncate warehouse.fact_ticket_classification, warehouse.raw_events")

        with PostgresWarehouse.connect(db) as warehouse:  # as warehouse_writer's bootstrap opens it
            warehouse.check()
            handler = WarehouseWriter(
                warehouse,
                batch_size=writer_settings.batch_size,
                batch_delay_s=writer_settings.batch_delay_s,
            )
            batched_s = asyncio.run(_through_handler(handler, batch, writer_settings.max_in_flight))
            batches = handler.batches
            _check_counts(conn, n, "batched")
            digest = _digest(conn)
            assert digest == naive_digest, "batched and row-by-row writes stored different rows"
            with_times = _digest(conn, with_insert_time=True)
            replay_s = asyncio.run(_through_handler(handler, batch, writer_settings.max_in_flight))
            _check_counts(conn, n, "replay")
            assert _digest(conn, with_insert_time=True) == with_times, "the replay changed stored rows"
    return Figures(
        results=n,
        rows=2 * n,
        naive_s=naive_s,
        batched_s=batched_s,
        replay_s=replay_s,
        batches=batches,
        batch_size=writer_settings.batch_size,
        max_in_flight=writer_settings.max_in_flight,
    )


async def _through_handler(
    handler: WarehouseWriter,
    batch: Sequence[tuple[Envelope[Any], KafkaPosition]],
    in_flight: int,
) -> float:
    """Feed every record to the handler with at most ``in_flight`` awaiting at once, as the runtime does; seconds
    taken."""
    slots = asyncio.Semaphore(in_flight)

    async def one(envelope: Envelope[Any], position: KafkaPosition) -> None:
        async with slots:
            ctx = MessageContext(
                position.topic,
                position.partition,
                position.offset,
                None,
                (),
                None,
                "bench-warehouse",
            )
            await handler(envelope, ctx)

    started = time.perf_counter()
    await asyncio.gather(*(one(e, p) for e, p in batch))
    return time.perf_counter() - started


def _check_counts(conn: psycopg.Connection[Any], n: int, what: str) -> None:
    for table in _TABLES:
        count = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("warehouse", table))).fetchone()
        assert count is not None and count[0] == n, (
            f"{what}: warehouse.{table} holds {count and count[0]} rows, expected {n}"
        )


def _digest(conn: psycopg.Connection[Any], *, with_insert_time: bool = False) -> dict[str, str]:
    """md5 of every row of each table (in key order), without the insert-time column unless asked."""
    out: dict[str, str] = {}
    for table, (key, inserted) in _TABLES.items():
        row = sql.SQL("to_jsonb(t)") if with_insert_time else sql.SQL("to_jsonb(t) - {}").format(sql.Literal(inserted))
        query = sql.SQL("select md5(string_agg(({})::text, '|' order by {})) from {} t").format(
            row, sql.Identifier(key), sql.Identifier("warehouse", table)
        )
        found = conn.execute(query).fetchone()
        out[table] = found[0] if found else ""
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_warehouse",
        description=__doc__.splitlines()[0],
    )
    ap.add_argument(
        "--results",
        type=int,
        default=5000,
        help="ticket classifications (each with its source event: 2 rows)",
    )
    ap.add_argument(
        "--database-url",
        default=None,
        help="server to create the throwaway database on (default: CRMPILOT_DATABASE_URL)",
    )
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        figures = run(args.results, args.database_url)
    except (AssertionError, psycopg.Error) as exc:
        print(f"warehouse benchmark FAILED: {exc}", file=sys.stderr)
        return 1
    for line in figures.lines():
        print(line)
    load = os.getloadavg()[0]
    print(
        f"Whole warehouse benchmark {time.monotonic() - started:.0f} s on {os.cpu_count()} CPU(s), load "
        f"average {load:.1f}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
