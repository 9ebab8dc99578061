"""``crmpilot trace EVENT_ID``: where one event went, from the warehouse's provenance.

The event as received (``raw_events``), the results made from it (the fact
tables, by ``source_event_id``; a result event id also matches), the CRM
writes decided for those results (``crm_write_audit``), the dead-letter log
entries at the event's or its results' Kafka positions (``dlq_log``), and the
trace ids to look up in the tracing backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from crmpilot.warehouse.errors import WarehouseNotMigrated, WarehouseUnavailable

__all__ = ["EventTrail", "event_trail", "FACT_TABLES"]

FACT_TABLES = ("fact_ticket_classification", "fact_email_summary", "fact_enrichment")

_RAW = """select event_id, type, subject, source, event_time, topic, kafka_partition, kafka_offset, received_at
          from warehouse.raw_events where event_id = %(id)s"""
_FACT = """select {table} as fact_table, result_id, result_event_id, subject, review_decision, provider, model,
                  prompt_version, trace_id, source_topic, source_partition, source_offset, source_event_id,
                  result_topic, result_partition, result_offset, processed_at, written_at
           from warehouse.{ident} where source_event_id = %(id)s or result_event_id = %(id)s"""
_AUDIT = """select id, result_id, sobject, record_id, field, before_value, after_value, status, reason, trace_id,
                   run_id, applied_at, reverted_at
            from warehouse.crm_write_audit where result_id = any(%(results)s) order by applied_at, id"""
_DLQ = """select consumer_group, topic, kafka_partition, kafka_offset, dlq_topic, error_class, error_code,
                 error_message, attempts, failed_at
          from warehouse.dlq_log
          where (topic, kafka_partition, kafka_offset) in
                (select * from unnest(%(topics)s::text[], %(partitions)s::int[], %(offsets)s::bigint[]))
          order by failed_at"""


@dataclass(frozen=True, slots=True)
class EventTrail:
    event_id: str
    raw_event: dict[str, Any] | None
    results: tuple[dict[str, Any], ...]
    crm_writes: tuple[dict[str, Any], ...]
    dead_letters: tuple[dict[str, Any], ...]

    @property
    def found(self) -> bool:
        return bool(self.raw_event or self.results or self.dead_letters)

    @property
    def trace_ids(self) -> tuple[str, ...]:
        ids = [r["trace_id"] for r in (*self.results, *self.crm_writes) if r.get("trace_id")]
        return tuple(dict.fromkeys(ids))


def event_trail(conn: psycopg.Connection[Any], event_id: str) -> EventTrail:
    """Everything the warehouse knows about ``event_id``."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            raw = cur.execute(_RAW, {"id": event_id}).fetchone()
            results: list[dict[str, Any]] = []
            for table in FACT_TABLES:
                query = sql.SQL(_FACT).format(table=sql.Literal(table), ident=sql.Identifier(table))
                results += cur.execute(query, {"id": event_id}).fetchall()
            audit = cur.execute(_AUDIT, {"results": [r["result_id"] for r in results]}).fetchall()
            positions = [(r["topic"], r["kafka_partition"], r["kafka_offset"]) for r in [raw] if r]
            positions += [(r["source_topic"], r["source_partition"], r["source_offset"]) for r in results]
            positions += [(r["result_topic"], r["result_partition"], r["result_offset"]) for r in results]
            topics, partitions, offsets = (list(c) for c in zip(*positions, strict=True)) if positions else ([], [], [])
            dlq = cur.execute(_DLQ, {"topics": topics, "partitions": partitions, "offsets": offsets}).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise WarehouseNotMigrated(
            f"the warehouse schema is missing or out of date; run `crmpilot db migrate` ({exc})"
        ) from exc
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
    return EventTrail(event_id, raw, tuple(results), tuple(audit), tuple(dlq))
