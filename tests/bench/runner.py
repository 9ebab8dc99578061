"""Run the benchmark: one ticket workload through three consumers, measured side by side, one table.

The model endpoint is the OpenAI-protocol test server (its own process) with a
fixed latency; every contender calls it through the shared LLM client and the
real ``openai`` SDK, at most C requests at once (the client's limiter), so
C ÷ latency events/s is the physical limit. Each contender is a process of
its own, on fresh topics (12 partitions, many keys, broker ``LogAppendTime``):

1. *backlog*: N events are produced, then the contender is started; events/s
   is the rate of its results (broker append times of the first to the last
   result), CPU seconds per 1,000 events are read from ``/proc/<pid>/stat``
   over the same span, peak RSS is the process's ``VmHWM``;
2. *latency*: once the backlog is done, M more events arrive paced at 50 % of
   the limit; end-to-end latency = result's broker append time − event's.

The overhead run repeats the backlog step at latency 0 (no latency step): how
many events/s one process sustains when the model costs nothing but its HTTP
round trip. Topics and consumer groups are deleted afterwards. Options:
``python -m tests.bench --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__

from crmpilot.events import encode
from crmpilot.settings import KafkaSettings
from tests.bench.workload import case_events
from tests.kafkakit import value_of

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 12
PACE = 0.5  # the latency step offers this share of the endpoint's limit
RUN_TIMEOUT_S = 240.0


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    module: str
    concurrent: bool  # works on many events at once (gets --in-flight), or one at a time


CONTENDERS = (
    Contender("naive", "(a) naive poll→process→commit loop", "tests.bench.bench_naive", False),
    Contender("faust", "(b) faust-streaming agent, concurrency=N", "tests.bench.bench_faust", True),
    Contender("runtime", "(c) crmpilot ConsumerService, max_in_flight=N", "tests.bench.bench_runtime", True),
)


@dataclass(frozen=True, slots=True)
class Measured:
    contender: Contender
    latency: float
    events: int
    events_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_per_1k: float | None
    peak_rss_mb: float | None
    slots_busy: float | None
    call_ms: float | None
    duplicates: int
    failure: str | None = None


class _Endpoint:
    """The model endpoint process (:mod:`tests.bench.bench_server`)."""

    def __init__(self, latency: float, log: Path) -> None:
        self.latency = latency
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_server", "--latency", str(latency)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
        )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError(f"the model endpoint did not start (see {log})")

    def close(self) -> dict[str, int]:
        self._proc.send_signal(signal.SIGTERM)
        out, _ = self._proc.communicate(timeout=30)
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else {}


class _Run:
    """One contender process on its own topics and group."""

    def __init__(self, bench: _Bench, contender: Contender, endpoint: _Endpoint, step: str) -> None:
        self.bench, self.contender, self.endpoint = bench, contender, endpoint
        name = f"bench.{bench.tag}.{contender.key}.{step}"
        self.src, self.out, self.group = f"{name}.in", f"{name}.out", f"{name}.group"
        self.stats_file = bench.log.with_name(f"{contender.key}.{step}.json")
        bench.create_topics([self.src, self.out], dlq_of=self.src)
        bench.groups.append(self.group)
        self.first_seen: dict[str, int] = {}  # source event id -> broker append time of its first result (ms)
        self.duplicates = 0

    def start(self, events: int) -> subprocess.Popen[bytes]:
        b = self.bench
        in_flight = b.in_flight if self.contender.concurrent else 1
        cmd = [
            sys.executable,
            "-m",
            self.contender.module,
            "--bootstrap",
            b.bootstrap,
            "--src",
            self.src,
            "--out",
            self.out,
            "--group",
            self.group,
            "--base-url",
            self.endpoint.base_url,
            "--concurrency",
            str(b.concurrency),
            "--in-flight",
            str(in_flight),
            "--measure-events",
            str(events),
            "--stats-file",
            str(self.stats_file),
        ]
        return subprocess.Popen(cmd, cwd=REPO, stdout=b.log.open("ab"), stderr=subprocess.STDOUT)

    def follow(self, proc: subprocess.Popen[bytes], results: Consumer, until: int, deadline: float) -> None:
        """Read results until ``until`` distinct events have one; fail if the process dies or time runs out."""
        while len(self.first_seen) < until:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} after {len(self.first_seen)} results")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.first_seen)} of {until} results within {RUN_TIMEOUT_S:.0f} s")
            for msg in results.consume(500, 0.05):
                if msg.error() is not None:
                    continue
                event_id = json.loads(value_of(msg))["source_event_id"]
                if event_id in self.first_seen:
                    self.duplicates += 1
                else:
                    self.first_seen[event_id] = msg.timestamp()[1]

    def measure(self, events: int, paced: int) -> Measured:
        b, c = self.bench, self.contender
        ids = [f"{self.src}-{n}" for n in range(events + paced)]
        b.produce(self.src, events, offset=0)
        results = b.reader(self.out)
        proc = self.start(events)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        try:
            self.follow(proc, results, 1, deadline)
            cpu0 = _cpu_seconds(proc.pid)
            self.follow(proc, results, events, deadline)
            cpu1 = _cpu_seconds(proc.pid)
            if paced:
                rate = PACE * b.concurrency / self.endpoint.latency
                feeder = threading.Thread(
                    target=b.produce, args=(self.src, paced), kwargs={"offset": events, "rate": rate}, daemon=True
                )
                feeder.start()
                self.follow(proc, results, events + paced, deadline)
                feeder.join()
            rss = _peak_rss_mb(proc.pid)
        except RuntimeError as exc:
            return Measured(
                c, self.endpoint.latency, events, None, None, None, None, None, None, None, self.duplicates, str(exc)
            )
        finally:
            _stop(proc)
            results.close()
        backlog = sorted(self.first_seen[i] for i in ids[:events])
        span_s = (backlog[-1] - backlog[0]) / 1000
        p50 = p99 = None
        if paced:
            appended = b.append_times(self.src)
            waits = sorted(self.first_seen[i] - appended[i] for i in ids[events:])
            p50, p99 = statistics.median(waits), _percentile(waits, 0.99)
        use = json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {}
        return Measured(
            c,
            self.endpoint.latency,
            events,
            (events - 1) / span_s if span_s > 0 else None,
            p50,
            p99,
            (cpu1 - cpu0) / (events - 1) * 1000,
            rss,
            use.get("slots_busy"),
            use.get("call_ms"),
            self.duplicates,
        )


class _Bench:
    """Topics, groups, producing and reading for one benchmark run; cleans up after itself."""

    def __init__(self, bootstrap: str, *, concurrency: int, in_flight: int, keys: int, log: Path) -> None:
        self.bootstrap, self.concurrency, self.in_flight, self.keys, self.log = (
            bootstrap,
            concurrency,
            in_flight,
            keys,
            log,
        )
        self.tag = uuid.uuid4().hex[:8]
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.topics: list[str] = []
        self.groups: list[str] = []

    def create_topics(self, names: Sequence[str], *, dlq_of: str) -> None:
        config = {"message.timestamp.type": "LogAppendTime"}
        new = [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1, config=config) for n in names]
        new.append(NewTopic(dlq_of + ".dlq", num_partitions=1, replication_factor=1))
        for future in self.admin.create_topics(new, operation_timeout=30).values():
            future.result(30)
        self.topics += [t.topic for t in new]
        deadline = time.monotonic() + 30
        while not {t.topic for t in new} <= set(self.admin.list_topics(timeout=10).topics):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics not visible: {names}")
            time.sleep(0.05)

    def produce(self, topic: str, count: int, *, offset: int, rate: float | None = None) -> None:
        """Produce events ``offset .. offset+count-1`` of ``topic`` (paced at ``rate``/s if given)."""
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 0 if rate else 5}
        )
        start = time.monotonic()
        for i, envelope in enumerate(case_events(offset + count, keys=self.keys, tag=topic)):
            if i < offset:
                continue
            if rate:
                delay = start + (i - offset) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.produce(topic, encode(envelope), envelope.subject.encode())
            producer.poll(0)
        if producer.flush(30):
            raise RuntimeError(f"events to {topic} not acknowledged")

    def reader(self, topic: str) -> Consumer:
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"bench.{self.tag}.reader", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        return consumer

    def append_times(self, topic: str) -> dict[str, int]:
        """Event id -> broker append time (ms) of every event in ``topic``."""
        consumer = self.reader(topic)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
        done = {p for p, end in ends.items() if end == 0}
        out: dict[str, int] = {}
        try:
            while len(done) < PARTITIONS:
                for msg in consumer.consume(500, 0.2):
                    if msg.error() is None:
                        out[json.loads(value_of(msg))["id"]] = msg.timestamp()[1]
                        offset, partition = msg.offset(), msg.partition()
                        assert offset is not None and partition is not None, "a consumed record has a position"
                        if offset + 1 >= ends[partition]:
                            done.add(partition)
        finally:
            consumer.close()
        return out

    def cleanup(self) -> None:
        """Delete this run's topics (faust's internal ones included) and consumer groups."""
        with contextlib.suppress(KafkaException):
            existing = self.admin.list_topics(timeout=10).topics
            doomed = sorted(
                {*self.topics, *(t for t in existing if t.startswith(f"bench.{self.tag}."))} & set(existing)
            )
            for future in self.admin.delete_topics(doomed, operation_timeout=30).values() if doomed else ():
                with contextlib.suppress(KafkaException):
                    future.result(30)
        groups = [*self.groups, f"bench.{self.tag}.reader"]
        for future in self.admin.delete_consumer_groups(groups, request_timeout=10).values():
            with contextlib.suppress(KafkaException):
                future.result(30)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))]


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(rows: Sequence[Measured], *, concurrency: int, latency: float, in_flight: int) -> Iterator[str]:
    """The results as one Markdown table, footnotes and ratios."""
    limit = concurrency / latency
    yield (
        f"Endpoint: {latency * 1000:.0f} ms per request, cap C = {concurrency} concurrent → limit {limit:.0f} "
        f"events/s; N = {in_flight}."
    )
    yield ""
    yield (
        "| contender | model latency | events | events/s | p50 e2e | p99 e2e | CPU s / 1k events | peak RSS "
        "| utilisation | slots busy | call time |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in rows:
        if r.failure:
            yield (
                f"| {r.contender.label} | {r.latency * 1000:.0f} ms | {r.events} | failed: {r.failure} | | | | | | | |"
            )
            continue
        p50 = _fmt(r.p50_ms and r.p50_ms / 1000, ".2f") + (" s" if r.p50_ms is not None else "")
        p99 = _fmt(r.p99_ms and r.p99_ms / 1000, ".2f") + (" s" if r.p99_ms is not None else "")
        util = "—" if r.latency == 0 or r.events_per_s is None else f"{r.events_per_s / limit:.0%}"
        yield (
            f"| {r.contender.label} | {r.latency * 1000:.0f} ms | {r.events} | {_fmt(r.events_per_s, '.1f')} | "
            f"{p50} | {p99} "
            f"| {_fmt(r.cpu_per_1k, '.2f')} | {_fmt(r.peak_rss_mb, '.0f')} MB | {util} "
            f"| {_fmt(r.slots_busy, '.0%')} | {_fmt(r.call_ms, '.0f')} ms |"
        )
    by = {(r.contender.key, r.latency): r.events_per_s for r in rows if r.events_per_s}
    ours = by.get(("runtime", latency))
    if ours:
        ratios = [f"{ours / by[(k, latency)]:.1f}× {k}" for k in ("naive", "faust") if by.get((k, latency))]
        yield ""
        yield (
            f"Runtime throughput at {latency * 1000:.0f} ms: "
            + (", ".join(ratios) or "no other contender finished")
            + "."
        )
    dups = {r.contender.key: r.duplicates for r in rows if r.duplicates}
    if dups:
        yield f"Duplicate results seen (at-least-once): {dups}."
    yield from (
        "",
        "- events/s: results per second over the backlog (broker append times, first to last result).",
        f"- p50/p99 e2e: event appended → its result appended, for events arriving at {PACE:.0%} of the limit "
        "after the backlog.",
        "- CPU s / 1k events, peak RSS: the contender process, all threads, over the backlog "
        "(`/proc/<pid>/stat`, `VmHWM`);",
        "  the model endpoint runs in a process of its own.",
        "- utilisation: events/s ÷ (C ÷ model latency), the endpoint's limit.",
        "- slots busy: share of C × elapsed time (first call → last backlog result) with a model call in progress;",
        "  call time: mean duration of one call as the client sees it (the endpoint itself waits the model latency).",
        "  utilisation ≈ slots busy × model latency ÷ call time: what the consumer feeds vs what each call costs.",
        "- (a) works on one event at a time (1 of the C slots); (b) has no per-key order; (c) keeps per-key order.",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=None, help="Kafka (default: CRMPILOT_KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    ap.add_argument("--latency", type=float, default=0.2, help="model latency, seconds (default 0.2)")
    ap.add_argument("--concurrency", type=int, default=16, help="C: concurrent requests the client allows (default 16)")
    ap.add_argument(
        "--in-flight", type=int, default=None, help="N: faust concurrency / runtime max_in_flight (default 2C)"
    )
    ap.add_argument("--events", type=int, default=2000, help="backlog of (b) and (c)")
    ap.add_argument("--paced", type=int, default=300, help="events of the latency step for (b) and (c)")
    ap.add_argument("--naive-events", type=int, default=40, help="backlog of (a): it does about 1/latency events/s")
    ap.add_argument("--naive-paced", type=int, default=10)
    ap.add_argument("--overhead-events", type=int, default=1000, help="backlog of (b) and (c) at latency 0")
    ap.add_argument("--naive-overhead-events", type=int, default=300)
    ap.add_argument("--keys", type=int, default=1000, help="distinct case ids")
    ap.add_argument("--only", choices=[c.key for c in CONTENDERS], action="append", help="run only these contenders")
    ap.add_argument("--no-overhead", action="store_true", help="skip the latency-0 runs")
    args = ap.parse_args(argv)
    bootstrap = args.bootstrap or KafkaSettings().bootstrap
    in_flight = args.in_flight or 2 * args.concurrency
    chosen = [c for c in CONTENDERS if not args.only or c.key in args.only]
    log = Path(tempfile.mkdtemp(prefix="crmpilot-bench-")) / "bench.log"
    bench = _Bench(bootstrap, concurrency=args.concurrency, in_flight=in_flight, keys=args.keys, log=log)
    started = time.monotonic()
    rows: list[Measured] = []
    endpoints: dict[float, _Endpoint] = {}
    seen: dict[float, dict[str, int]] = {}
    print(f"benchmark {bench.tag}: Kafka {bootstrap}, logs in {log}", file=sys.stderr)
    try:
        steps = [(args.latency, "lat")] + ([] if args.no_overhead else [(0.0, "zero")])
        for latency, step in steps:
            endpoints[latency] = _Endpoint(latency, log)
            for c in chosen:
                naive = c.key == "naive"
                if latency:
                    events = args.naive_events if naive else args.events
                else:
                    events = args.naive_overhead_events if naive else args.overhead_events
                paced = 0 if not latency else (args.naive_paced if naive else args.paced)
                print(f"  {c.label}, latency {latency * 1000:.0f} ms: {events} + {paced} events…", file=sys.stderr)
                rows.append(_Run(bench, c, endpoints[latency], step).measure(events, paced))
            seen[latency] = endpoints.pop(latency).close()
    finally:
        for endpoint in endpoints.values():
            endpoint.close()
        bench.cleanup()
    for line in table(rows, concurrency=args.concurrency, latency=args.latency, in_flight=in_flight):
        print(line)
    peak = seen.get(args.latency, {}).get("max_concurrent")
    print(
        f"\nThe endpoint saw at most {peak} concurrent requests (C = {args.concurrency}); "
        f"whole benchmark {time.monotonic() - started:.0f} s on {os.cpu_count()} CPU(s)."
    )
    return 1 if any(r.failure for r in rows) else 0
