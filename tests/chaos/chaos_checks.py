"""What a chaos scenario must leave behind, measured where a user would look.

For every input event of the scenario (case, email or lead request):

- the warehouse holds exactly one fact row for it in its task's table
  (``source_event_id``), with the deterministic result id, and exactly one
  ``raw_events`` row (the warehouse writer also stores source events);
- the CRM sandbox's record (the Case, or the Lead) carries that result id in
  its task's id field (``AI_Result_Id__c``; an email summary has its own,
  ``AI_Summary_Result_Id__c``), and its change log shows exactly one update by the
  integration user (one applied CRM change per result: a second write would
  be a second logged update);
- the warehouse's ``crm_write_audit`` holds, per field written, exactly one
  ``applied`` row for that result.

And for the scenario as a whole: the dead-letter topics received exactly the
deliberately poisoned records (each once per consumer group that reads their
topic) and nothing else, and every group's committed offset reached the end
of its topics (no stall).

``lost`` counts input events with at least one missing effect, ``duplicated``
input events with at least one doubled effect.

Several events about one record (the replica scenarios' workload: one key,
produced in order): each has its fact, raw event and audit rows as above; the
CRM record must end up carrying the *last* event's result id, and its change
log must show one update per event.

**Order** (per key, the runtime's promise): with the offsets the events were
written at (the producer's delivery reports),

- *result topic*: for every key, the results of the scenario's events, read in
  partition order, must name source offsets (``provenance.source_offset``) in
  increasing order, counting each result id at its first appearance (a copy
  recomputed after a crash repeats an earlier result id: at-least-once, not a
  reordering); and every result's source offset must be the one its event was
  written at;
- *CRM audit*: for every record, the ``applied`` rows of
  ``warehouse.crm_write_audit`` in insertion order (``id``) must name results
  whose source offsets increase, with no result coming back after a later one
  (several rows of one result, one per field, count once). Here a repeat is an
  order violation too: it means the CRM went back to an older result.

``order`` in the table is ``ok`` or the number of keys that break either rule.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from chaos_workload import POISON_PREFIX, Workload
from confluent_kafka import Consumer, KafkaException, TopicPartition

from crm_sandbox.org import INTEGRATION_USER

DLQ_SUFFIX = ".dlq"


@dataclass
class Verdict:
    """The measured outcome of one scenario."""

    events: int
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    dlq_expected: int = 0
    dlq_found: int = 0
    dlq_unexpected: list[str] = field(default_factory=list)
    dlq_codes: Counter[str] = field(default_factory=Counter)
    dlq_distinct: int = 0
    """(poison record, group) pairs found: must equal dlq_expected."""
    dlq_copies: int = 0
    """Extra copies of a poison record by the same group (a crash between dead-lettering and the commit:
    at-least-once)."""
    stalled: list[str] = field(default_factory=list)
    order_checked: int = 0
    """Keys whose order was checked (0: not checked)."""
    order_violations: list[str] = field(default_factory=list)
    """Keys whose results or applied CRM changes came out of order (one line each)."""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.duplicated
            and not self.dlq_unexpected
            and self.dlq_distinct == self.dlq_expected
            and not self.stalled
            and not self.order_violations
        )


class Inspector:
    """Reads the warehouse, the sandbox's tables and the topics of one pipeline."""

    def __init__(
        self,
        database_url: str,
        bootstrap: str,
        groups: Mapping[str, Sequence[str]],
        partitions: int,
        dlq_services: Mapping[str, str] | None = None,
    ) -> None:
        self.dlq_services = dict(dlq_services or {})  # dead-letter topic of a source topic -> its AI service
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.groups = dict(groups)  # group id -> topics it reads
        self.partitions = partitions
        self._consumers: dict[str, Consumer] = {}

    def close(self) -> None:
        for c in self._consumers.values():
            c.close()
        self._consumers.clear()

    def _consumer(self, group: str) -> Consumer:
        if group not in self._consumers:
            self._consumers[group] = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "log_level": 0,
                }
            )
        return self._consumers[group]

    # --- topics

    def end_offsets(self, topic: str, timeout: float = 5) -> dict[int, int]:
        c = self._consumer("chaos-inspector")
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in range(self.partitions)
        }

    def stalled_groups(self) -> list[str]:
        """Groups whose committed offset is behind the end of a topic they read."""
        behind = []
        for group, topics in self.groups.items():
            c = self._consumer(group)
            parts = [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
            committed = c.committed(parts, timeout=5)
            for tp in committed:
                end = self.end_offsets(tp.topic)[tp.partition]
                if max(tp.offset, 0) != end:
                    behind.append(f"{group} {tp.topic}[{tp.partition}] {max(tp.offset, 0)}/{end}")
        return behind

    def lag(self) -> dict[str, int]:
        """Per group: records not yet committed, summed over the partitions of the topics it reads."""
        out: dict[str, int] = {}
        for group, topics in self.groups.items():
            c = self._consumer(group)
            parts = [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
            ends = {t: self.end_offsets(t) for t in topics}
            out[group] = sum(ends[tp.topic][tp.partition] - max(tp.offset, 0) for tp in c.committed(parts, timeout=5))
        return out

    def read_range(
        self,
        topic: str,
        start: Mapping[int, int],
        end: Mapping[int, int],
        timeout: float = 30,
    ) -> list[Any]:
        want = sum(max(0, end[p] - start.get(p, 0)) for p in end)
        if want == 0:
            return []
        c = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"chaos-reader-{time.time_ns()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        try:
            c.assign([TopicPartition(topic, p, start.get(p, 0)) for p in end if end[p] > start.get(p, 0)])
            out: list[Any] = []
            deadline = time.monotonic() + timeout
            while len(out) < want and time.monotonic() < deadline:
                for msg in c.consume(500, 0.5):
                    if msg.error() is not None:
                        continue
                    offset, partition = msg.offset(), msg.partition()
                    assert offset is not None and partition is not None, "a consumed record has a position"
                    if offset < end[partition]:
                        out.append(msg)
            return out
        finally:
            c.close()

    # --- the database

    def _rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            return conn.execute(query, params).fetchall()

    def progress(self, w: Workload) -> dict[str, int]:
        """Cheap counts to see whether a scenario has finished (raises while the database is down)."""
        ids = [i.event.id for i in w.items]
        results = [i.result_id for i in w.items]
        facts = 0
        for table in sorted({i.fact_table for i in w.items}):
            table_ids = [i.event.id for i in w.items if i.fact_table == table]
            facts += self._rows(
                f"select count(*) from warehouse.{table} where source_event_id = any(%s)",
                (table_ids,),
            )[0][0]
        raw = self._rows("select count(*) from warehouse.raw_events where event_id = any(%s)", (ids,))[0][0]
        crm = 0
        for id_field in sorted({i.id_field for i in w.items}):
            pairs = [(i.record_id, i.result_id) for i in w.items if i.id_field == id_field and i.last]
            crm += self._rows(
                "select count(*) from crm_sandbox.records where id = any(%s) and fields->>%s = any(%s)",
                ([p[0] for p in pairs], id_field, [p[1] for p in pairs]),
            )[0][0]
        audit = self._rows(
            "select count(distinct result_id) from warehouse.crm_write_audit where result_id = any(%s) and "
            "status = 'applied'",
            (results,),
        )[0][0]
        return {"facts": facts, "raw": raw, "crm": crm, "audit": audit}

    @staticmethod
    def targets(w: Workload) -> dict[str, int]:
        """What :meth:`progress` reads once every effect has landed."""
        n = len(w.items)
        return {"facts": n, "raw": n, "crm": sum(1 for i in w.items if i.last), "audit": n}

    def verdict(
        self,
        w: Workload,
        dlq_start: Mapping[str, Mapping[int, int]],
        dlq_readers: Mapping[str, int],
        *,
        results_start: Mapping[str, Mapping[int, int]] | None = None,
        produced: Mapping[str, tuple[int, int]] | None = None,
    ) -> Verdict:
        """The full check (call once the scenario is done or timed out).

        ``dlq_readers``: per dead-letter topic, how many groups read its source topic
        (each dead-letters every poison record of that topic once). ``results_start``
        (result topic -> partition -> offset before the scenario) and ``produced`` (event
        id -> partition, offset it was written at): also check the order (:meth:`order`).
        """
        v = Verdict(events=len(w.items))
        ids = [i.event.id for i in w.items]
        item_of_key = {i.event.subject: i for i in w.items}

        facts: Counter[str] = Counter()
        wrong_result: list[str] = []
        for table in sorted({i.fact_table for i in w.items}):
            expected = {i.event.id: i.result_id for i in w.items if i.fact_table == table}
            for event_id, result_id in self._rows(
                f"select source_event_id, result_id from warehouse.{table} where source_event_id = any(%s)",
                (list(expected),),
            ):
                facts[event_id] += 1
                if expected.get(event_id) != result_id:
                    wrong_result.append(event_id)
        raw = Counter(
            e
            for (e,) in self._rows(
                "select event_id from warehouse.raw_events where event_id = any(%s)",
                (ids,),
            )
        )

        records = [i.record_id for i in w.items]
        crm_field: dict[tuple[str, str], str | None] = {}
        for id_field in sorted({i.id_field for i in w.items}):
            for rec, value in self._rows(
                "select id, fields->>%s from crm_sandbox.records where id = any(%s)",
                (id_field, records),
            ):
                crm_field[(rec, id_field)] = value
        crm_updates: Counter[str] = Counter(
            dict(
                self._rows(
                    "select record_id, count(*) from crm_sandbox.changes where record_id = any(%s)"
                    " and change_type = 'UPDATE' and commit_user = %s group by record_id",
                    (records, INTEGRATION_USER.id),
                )
            )
        )
        audit_rows = self._rows(
            "select result_id, field, status, count(*) from warehouse.crm_write_audit where result_id = "
            "any(%s) group by 1, 2, 3",
            ([i.result_id for i in w.items],),
        )
        applied_fields: dict[str, Counter[str]] = {}
        statuses: Counter[str] = Counter()
        for result_id, fld, status, n in audit_rows:
            statuses[status] += n
            if status == "applied":
                applied_fields.setdefault(result_id, Counter())[fld] += n

        missing: dict[str, list[str]] = {
            "fact": [],
            "raw_event": [],
            "crm_field": [],
            "crm_update": [],
            "audit": [],
        }
        doubled: dict[str, list[str]] = {"fact": [], "crm_update": [], "audit": []}
        by_service: dict[str, Counter[str]] = {}
        updates_due = {rec: len(items) for rec, items in w.per_record.items()}
        for item in w.items:
            eid, rid, rec = item.event.id, item.result_id, item.record_id
            problems = by_service.setdefault(item.service, Counter())
            due = updates_due[rec]
            checks = (
                ("fact", facts[eid] == 0, facts[eid] > 1),
                ("raw_event", raw[eid] == 0, False),
                # the record's last event: the CRM carries its result, one update per event of the record
                ("crm_field", item.last and crm_field.get((rec, item.id_field)) != rid, False),
                ("crm_update", item.last and crm_updates[rec] < due, item.last and crm_updates[rec] > due),
                (
                    "audit",
                    not applied_fields.get(rid),
                    any(n > 1 for n in applied_fields.get(rid, Counter()).values()),
                ),
            )
            for kind, is_missing, is_doubled in checks:
                if is_missing:
                    missing[kind].append(eid)
                    problems[f"missing_{kind}"] += 1
                if is_doubled:
                    doubled[kind].append(eid)
                    problems[f"doubled_{kind}"] += 1
        for evs in missing.values():
            v.lost.update(evs)
        for evs in doubled.values():
            v.duplicated.update(evs)
        v.details["missing"] = {k: len(x) for k, x in missing.items() if x}
        v.details["doubled"] = {k: len(x) for k, x in doubled.items() if x}
        v.details["by_service"] = {s: dict(c) for s, c in by_service.items() if c}
        v.details["audit_statuses"] = dict(statuses)
        if wrong_result:
            v.details["wrong_result_id"] = len(wrong_result)
            v.lost.update(wrong_result)
        v.details["examples"] = {
            k: x[:3]
            for k, x in {
                **missing,
                **{f"doubled_{k}": x for k, x in doubled.items()},
            }.items()
            if x
        }

        # dead letters: every poison record, by every group reading its topic; nothing else
        v.dlq_expected = sum(n * len(w.poison.get(self._service_of_dlq(t), ())) for t, n in dlq_readers.items())
        poison = w.poison_keys
        seen: Counter[tuple[bytes, str]] = Counter()
        for topic, start in dlq_start.items():
            end = self.end_offsets(topic)
            for msg in self.read_range(topic, start, end):
                headers = {k: (val or b"").decode("utf-8", "replace") for k, val in (msg.headers() or [])}
                key = msg.key() or b""
                group = headers.get("crmpilot.consumer.group", "?")
                code = headers.get("crmpilot.error.code", "?")
                v.dlq_codes[code] += 1
                v.dlq_found += 1
                seen[(key, group)] += 1
                if key not in poison:
                    known = item_of_key.get(key.decode("utf-8", "replace"))
                    v.dlq_unexpected.append(
                        f"{topic} key={key[:40]!r} group={group} code={code} event={known.event.id if known else '?'}"
                        f" message={headers.get('crmpilot.error.message', '')[:200]}"
                    )
        v.dlq_copies = sum(n - 1 for (key, _), n in seen.items() if key in poison and n > 1)
        v.dlq_distinct = sum(1 for (key, _) in seen if key in poison)
        try:
            v.stalled = self.stalled_groups()
        except KafkaException as exc:
            v.stalled = [f"cannot read committed offsets: {exc}"]
        if results_start is not None and produced is not None:
            order = self.order(w, results_start, produced)
            v.order_checked = order["keys"]
            v.order_violations = order["violations"]
            v.details["order"] = {k: x for k, x in order.items() if k != "violations"}
        return v

    def order(
        self,
        w: Workload,
        results_start: Mapping[str, Mapping[int, int]],
        produced: Mapping[str, tuple[int, int]],
    ) -> dict[str, Any]:
        """The per-key order of the scenario's results in the result topics and of its applied CRM changes.

        Returns ``keys`` (keys checked), ``violations`` (one line per key out of order),
        ``result_copies`` (results seen again after their first appearance: recomputed after
        a crash or a lost partition), ``offset_mismatch`` (results naming another source
        offset than their event's), ``unread`` (events without a produced offset).
        """
        offset_of = {eid: off for eid, (_, off) in produced.items()}
        ids = {i.event.id for i in w.items}
        seen_keys: set[tuple[str, bytes]] = set()
        violations: list[str] = []
        copies = mismatch = 0
        for topic, start in results_start.items():
            end = self.end_offsets(topic)
            messages = sorted(self.read_range(topic, start, end), key=lambda m: (m.partition(), m.offset()))
            firsts: dict[bytes, list[tuple[int, str]]] = {}
            seen: set[str] = set()
            for msg in messages:
                try:
                    env = json.loads(msg.value() or b"")
                    prov = env["data"]["provenance"]
                    eid, off, rid = prov["source_event_id"], int(prov["source_offset"]), str(env["id"])
                except (ValueError, KeyError, TypeError):
                    continue
                if eid not in ids:
                    continue  # another scenario's result
                if eid in offset_of and offset_of[eid] != off:
                    mismatch += 1
                if rid in seen:
                    copies += 1
                    continue
                seen.add(rid)
                firsts.setdefault(msg.key() or b"", []).append((off, rid))
            for key, seq in firsts.items():
                seen_keys.add((topic, key))
                offsets = [o for o, _ in seq]
                if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
                    violations.append(f"{topic} key={key.decode(errors='replace')} source offsets {offsets}")
        # the CRM audit: applied rows per record, in insertion order
        result_offset = {i.result_id: offset_of.get(i.event.id) for i in w.items}
        rows = self._rows(
            "select record_id, result_id from warehouse.crm_write_audit where result_id = any(%s)"
            " and status = 'applied' order by id",
            (list(result_offset),),
        )
        per_record: dict[str, list[str]] = {}
        for record, rid in rows:
            applied = per_record.setdefault(record, [])
            if not applied or applied[-1] != rid:  # one row per field of the same result
                applied.append(rid)
        if mismatch:
            violations.append(
                f"{mismatch} result(s) name another source offset than the one their event was written at"
            )
        for record, rids in per_record.items():
            audit_offsets = [result_offset.get(r) for r in rids]
            known_offsets = [o for o in audit_offsets if o is not None]
            if len(known_offsets) < len(audit_offsets) or any(
                b <= a for a, b in zip(known_offsets, known_offsets[1:], strict=False)
            ):
                violations.append(f"crm audit record={record} source offsets {audit_offsets}")
        return {
            "keys": len(seen_keys),
            "violations": violations,
            "result_copies": copies,
            "offset_mismatch": mismatch,
            "unread": sum(1 for i in w.items if i.event.id not in offset_of),
            "audit_records": len(per_record),
        }

    def _service_of_dlq(self, dlq_topic: str) -> str:
        return self.dlq_services.get(dlq_topic, "")


def dlq_topics(topics: Iterable[str]) -> list[str]:
    return [t + DLQ_SUFFIX for t in topics]


def is_poison(key: bytes | None) -> bool:
    return key is not None and key.startswith(POISON_PREFIX.encode())
