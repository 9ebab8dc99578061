"""The chaos workload: CRM records in the sandbox, one source event per record, and a few deliberate poison records.

Three flows, as in production: ``crm.case.created`` events for the ticket
classifier (each about its own Case), ``crm.email.received`` events for the
email summarizer (each on its own Case) and ``erp.request.submitted`` lead
requests for the request scorer (each about its own Lead). One event per
record, so after a run each record must carry exactly its event's result id
and each result must have been applied exactly once. Events of the three
flows are interleaved and produced at a steady rate from a background thread,
so faults hit the pipeline mid-stream; the runner's producer is idempotent
and buffers through a broker restart. With ``per_key`` > 1 each record gets several
events (one key, produced in order), for the per-key order check. Poison records (not JSON, unknown
schema version, over the size limit, not UTF-8) go to every source topic,
keyed ``chaos-poison-<scenario>-<n>``: the only records the DLQ may hold.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from crm_sandbox.client import sandbox_salesforce
from crmpilot.crm import mapping
from crmpilot.enrichments import load_registry, task_for
from crmpilot.events import (
    CaseEvent,
    EmailReceived,
    Envelope,
    RequestSubmitted,
    encode,
    result_id_for,
)
from crmpilot.tasks import CLASSIFY_TICKET, SUMMARIZE_EMAIL

HUMAN_TOKEN = "sandbox-human-token"
POISON_PREFIX = "chaos-poison-"

FLOWS: dict[str, tuple[Any, str, str]] = {
    # AI service: (task spec, CRM sObject, warehouse fact table)
    "ticket_classifier": (CLASSIFY_TICKET, "Case", "fact_ticket_classification"),
    "email_summarizer": (SUMMARIZE_EMAIL, "Case", "fact_email_summary"),
    "enricher": (task_for(load_registry([], builtin=True).get("score_request")), "Lead", "fact_enrichment"),
}

_SUBJECTS = (
    "Charged twice for invoice {n}",
    "Card payment declined at checkout (order {n})",
    "Refund for return {n} not received",
    "Locked out of my account after reset {n}",
    "App crashes when opening statement {n}",
    "Parcel {n} shows delivered but never arrived",
    "Please change delivery address for order {n}",
    "Cancel my subscription {n}",
    "Does plan {n} support single sign-on?",
    "Agent hung up on me, ticket {n}",
)
_DESCRIPTION = (
    "Hello, this is about {subject}. It happened again today and I need it sorted out. Reference {n}. Thank you."
)


@dataclass(frozen=True)
class Item:
    """One source event and the effects it must have."""

    service: str
    event: Envelope[Any]
    sobject: str
    record_id: str
    seq: int = 0
    """Its place among the events about the same record (their key): 0, 1, ... in the order produced."""
    last: bool = True
    """The last event about its record: the CRM must end up carrying its result."""

    @property
    def result_id(self) -> str:
        spec = FLOWS[self.service][0]
        return result_id_for(self.event.id, spec.name, spec.prompt.version)

    @property
    def fact_table(self) -> str:
        return FLOWS[self.service][2]

    @property
    def id_field(self) -> str:
        """The CRM field that carries this result's id (an email summary has its own, beside the classification's)."""
        if self.service == "email_summarizer":
            return getattr(mapping, "SUMMARY_RESULT_ID_FIELD", mapping.RESULT_ID_FIELD)
        return mapping.RESULT_ID_FIELD


@dataclass
class Workload:
    """The records and events of one scenario."""

    scenario: str
    items: list[Item]
    poison: dict[str, list[tuple[bytes, bytes]]]
    """AI service -> the poison records for its source topic."""

    @property
    def events(self) -> list[Envelope[Any]]:
        return [i.event for i in self.items]

    @property
    def poison_keys(self) -> set[bytes]:
        return {k for records in self.poison.values() for k, _ in records}

    @property
    def poison_count(self) -> int:
        return sum(len(r) for r in self.poison.values())

    @property
    def per_record(self) -> dict[str, list[Item]]:
        """Record id (the events' key) -> its items, in the order they are produced."""
        out: dict[str, list[Item]] = {}
        for item in self.items:
            out.setdefault(item.record_id, []).append(item)
        return out


def create_records(sandbox_url: str, ca_path: Path, sobject: str, n: int, *, tag: str) -> list[str]:
    """Create ``n`` Case or Lead records as a person (the agent user), 200 per sObject Collections call."""
    sf = sandbox_salesforce(sandbox_url, ca_path, HUMAN_TOKEN)
    ids: list[str] = []
    for start in range(0, n, 200):
        records = []
        for i in range(start, min(n, start + 200)):
            if sobject == "Case":
                subject = _SUBJECTS[i % len(_SUBJECTS)].format(n=f"{tag}-{i}")
                fields: dict[str, Any] = {
                    "Subject": subject,
                    "Description": _DESCRIPTION.format(subject=subject.lower(), n=f"{tag}-{i}"),
                    "Origin": ("Email", "Web", "Phone")[i % 3],
                    "Status": "New",
                }
            else:
                fields = {
                    "LastName": f"Buyer {i}",
                    "Company": f"Chaos Co {tag}-{i}",
                    "Status": "Open - Not Contacted",
                }
            records.append({"attributes": {"type": sobject}, **fields})
        answer = sf.restful(
            "composite/sobjects",
            method="POST",
            json={"allOrNone": True, "records": records},
        )
        assert answer is not None, f"no answer from the sandbox to creating {sobject} records"
        for r in answer:
            if not r.get("success"):
                raise RuntimeError(f"sandbox refused a {sobject}: {r}")
            ids.append(r["id"])
    return ids


def _now() -> datetime:
    return datetime.now(UTC)


def _case_item(i: int, case_id: str, tag: str, seq: int = 0) -> Item:
    """The case's creation, or (``seq`` > 0) an update of its description, which the classifier classifies again."""
    subject = _SUBJECTS[i % len(_SUBJECTS)].format(n=f"{tag}-{i}")
    description = _DESCRIPTION.format(subject=subject.lower(), n=f"{tag}-{i}")
    if seq:
        description += f" Update {seq}: still not solved, please call me back."
    data = CaseEvent(
        case_id=case_id, subject=subject, description=description,
        origin=("Email", "Web", "Phone")[i % 3], last_modified=_now(), changed_fields=("Description",) if seq else (),
    )  # fmt: skip
    env = Envelope[CaseEvent](
        source="crm://chaos",
        type="crm.case.updated" if seq else "crm.case.created",
        schemaversion=1,
        subject=case_id,
        time=_now(),
        data=data,
    )
    return Item("ticket_classifier", env, "Case", case_id, seq)


def _email_item(i: int, case_id: str, tag: str, seq: int = 0) -> Item:
    n = f"{tag}-{i}" + (f"-{seq}" if seq else "")
    data = EmailReceived(
        email_id=f"em-{n}"[:40],
        case_id=case_id,
        from_address=f"customer{i}@example.com",
        to_address="support@example.com",
        subject=f"Re: order {tag}-{i}",
        body=f"Hello, my order {tag}-{i} has not arrived yet (message {seq + 1}). Could you check where it is? Thanks.",
        received_at=_now(),
    )
    env = Envelope[EmailReceived](
        source="crm://chaos",
        type="crm.email.received",
        schemaversion=1,
        subject=case_id,
        time=_now(),
        data=data,
    )
    return Item("email_summarizer", env, "Case", case_id, seq)


def _request_item(i: int, lead_id: str, tag: str, seq: int = 0) -> Item:
    data = RequestSubmitted(
        request_id=lead_id,
        kind="lead",
        company=f"Chaos Co {tag}-{i}",
        contact_email=f"buyer{i}@chaosco.example",
        country="Germany",
        employees=50 + i,
        amount=Decimal(1000 + i + 100 * seq),
        currency="EUR",
        description=f"We need {10 + i % 40 + seq} seats from next month (ref "
        f"{tag}-{i}{f', revision {seq}' if seq else ''}).",
    )
    env = Envelope[RequestSubmitted](
        source="erp://chaos",
        type="erp.request.submitted",
        schemaversion=1,
        subject=lead_id,
        time=_now(),
        data=data,
    )
    return Item("enricher", env, "Lead", lead_id, seq)


def build_workload(
    scenario: str,
    sandbox_url: str,
    ca_path: Path,
    n: int,
    *,
    poison: int = 2,
    seed: int = 0,
    mix: tuple[float, float, float] = (0.6, 0.2, 0.2),
    per_key: int = 1,
) -> Workload:
    """``n`` events: by default 60 % cases, 20 % emails, 20 % lead requests; ``poison`` bad records per source topic.

    ``per_key`` > 1: that many events about each record (so with the same key): a case's
    creation then updates of its description, several emails on one case, revised lead
    requests. The stream is cut into ``per_key`` phases, phase ``j`` holding every record's
    ``j``-th event in random order, so a record's events are produced in order and spread
    over the stream; the order check (:meth:`chaos_checks.Inspector.order`) needs them.
    """
    n_cases, n_emails = round(n * mix[0]), round(n * mix[1])
    n_requests = n - n_cases - n_emails
    k = max(1, per_key)

    def records_for(events: int) -> int:
        return -(-events // k)

    r_cases, r_emails, r_requests = (records_for(x) for x in (n_cases, n_emails, n_requests))
    cases = create_records(sandbox_url, ca_path, "Case", r_cases + r_emails, tag=scenario)
    leads = create_records(sandbox_url, ca_path, "Lead", r_requests, tag=scenario) if r_requests else []
    time.sleep(0.01)  # events are strictly after the records' creation
    rnd = random.Random(seed)
    phases: list[list[Item]] = [[] for _ in range(k)]
    flows = (
        (_case_item, cases[:r_cases], n_cases),
        (_email_item, cases[r_cases:], n_emails),
        (_request_item, leads, n_requests),
    )
    for make, ids, events in flows:
        for i, rid in enumerate(ids):
            for j in range(min(k, events - i * k)):
                phases[j].append(make(i, rid, scenario, j))
    items: list[Item] = []
    for phase in phases:
        rnd.shuffle(phase)
        items += phase
    last = {item.record_id: item.seq for item in items}
    items = [dataclasses.replace(item, last=item.seq == last[item.record_id]) for item in items]
    records = poison_records(scenario, poison * len(FLOWS), seed=seed)
    by_service = {s: records[k * poison : (k + 1) * poison] for k, s in enumerate(FLOWS)}
    return Workload(scenario, items, by_service)


def poison_records(scenario: str, n: int, *, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """``n`` records every consumer must dead-letter: not JSON, unknown schema version, oversize."""
    rnd = random.Random(seed)
    kinds: list[Callable[[], bytes]] = [
        lambda: b"{not json at all",
        lambda: json.dumps(
            {
                "type": "crm.case.created",
                "schemaversion": 99,
                "source": "x",
                "subject": "x",
                "data": {},
            }
        ).encode(),
        lambda: b'{"type": "crm.case.created", "pad": "' + b"x" * (300 * 1024) + b'"}',
        lambda: bytes(rnd.randrange(256) for _ in range(64)) + b"\xff\xfe",
    ]
    return [(f"{POISON_PREFIX}{scenario}-{i}".encode(), kinds[i % len(kinds)]()) for i in range(n)]


@dataclass
class StreamProducer:
    """Produce a workload at a steady rate from a background thread, poison records spread through it."""

    bootstrap: str
    topics: dict[str, str]
    """AI service -> its source topic."""
    workload: Workload
    duration_s: float
    errors: list[str] = field(default_factory=list)
    delivered: int = 0
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Event id -> (partition, offset) it was written at (the delivery reports)."""
    done: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> StreamProducer:
        self._thread = threading.Thread(target=self._run, name="chaos-producer", daemon=True)
        self._thread.start()
        return self

    def _on_delivery(self, event_id: str | None, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(f"{err.name()}: {err.str()}")
        else:
            self.delivered += 1
            if event_id is not None:
                self.offsets[event_id] = (msg.partition() or 0, msg.offset() or 0)

    def _records(self) -> list[tuple[str, bytes, bytes, str | None]]:
        records: list[tuple[str, bytes, bytes, str | None]] = [
            (self.topics[i.service], i.event.subject.encode(), encode(i.event), i.event.id) for i in self.workload.items
        ]
        poison: list[tuple[str, bytes, bytes, str | None]] = [
            (self.topics[s], k, v, None) for s, recs in self.workload.poison.items() for k, v in recs
        ]
        step = max(1, len(records) // (len(poison) + 1))
        for i, p in enumerate(poison):
            records.insert(min(len(records), (i + 1) * step + i), p)
        return records

    def _run(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 300_000,
                "message.max.bytes": 2_000_000,
                "log_level": 0,
            }
        )
        records = self._records()
        interval = self.duration_s / max(1, len(records))
        t0 = time.monotonic()
        for i, (topic, key, value, event_id) in enumerate(records):
            while True:
                try:
                    producer.produce(
                        topic, value=value, key=key, on_delivery=functools.partial(self._on_delivery, event_id)
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
            wait = t0 + (i + 1) * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        left = producer.flush(300)
        if left:
            self.errors.append(f"{left} record(s) not delivered")
        self.finished_at = time.monotonic()
        self.done.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def expected(self) -> int:
        return len(self.workload.items) + self.workload.poison_count
