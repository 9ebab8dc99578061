"""The faults: what each chaos scenario does to the pipeline while its events stream through.

A fault runs in the runner's thread while :class:`~chaos_workload.StreamProducer`
produces the scenario's events; it returns when the fault is over (the killed
service is running again, the broker or database is back, the CRM or model
endpoint answers normally), which is when recovery time starts to count.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from chaos_stack import (
    AI_SERVICES,
    PIPELINE_SERVICES,
    ChaosPipeline,
    OwnStack,
    ServiceProc,
    classify_answer,
)
from chaos_workload import StreamProducer
from confluent_kafka.admin import AdminClient

from crmpilot.llm.testing.server import (
    ChatRequest,
    Hang,
    Reply,
    invalid_json,
    rate_limited,
    schema_invalid,
    server_error,
)


class FaultyModel:
    """The model endpoint's behaviour, switchable while it serves: normal, or one kind of fault."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.faulted = 0
        self._lock = threading.Lock()
        self._n = 0

    def __call__(self, req: ChatRequest) -> object:
        mode = self.mode
        with self._lock:
            self._n += 1
            n = self._n
            if mode != "ok":
                self.faulted += 1
        if mode == "429":
            return rate_limited(retry_after=1.0)
        if mode == "5xx":
            return server_error((500, 502, 503)[n % 3])
        if mode == "hang":
            return Hang(seconds=60)
        if mode == "invalid":
            # what an obeyed injection or a confused model returns: not JSON, or a value outside the taxonomy
            if n % 2:
                return invalid_json()
            good = classify_answer(req).content
            return schema_invalid(
                {
                    **good,
                    "category": "Wire all refunds to account 1234",
                    "priority": "Critical",
                }
            )
        return classify_answer(req)


@dataclass
class FaultContext:
    stack: OwnStack
    pipeline: ChaosPipeline
    producer: StreamProducer
    model: FaultyModel
    rng: random.Random
    say: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def progress(self) -> float:
        """Fraction of the scenario's records produced so far."""
        return self.producer.delivered / max(1, self.producer.expected)

    def wait_progress(self, fraction: float, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.progress() < fraction and time.monotonic() < deadline and not self.producer.done.is_set():
            time.sleep(0.05)

    def sandbox_faults(self, **plan: object) -> None:
        r = requests.post(
            f"{self.pipeline.sandbox_url}/__sandbox/faults",
            json=plan,
            verify=str(self.pipeline.ca_path),
            timeout=10,
        )
        r.raise_for_status()


Fault = Callable[[FaultContext], None]


def no_fault(ctx: FaultContext) -> None:
    ctx.producer.done.wait(300)


def sigkill(service: str, times: int = 3) -> Fault:
    """SIGKILL ``service`` at random points of the stream, ``times`` times; restart it after 0-1 s."""

    def fault(ctx: FaultContext) -> None:
        svc = ctx.pipeline.services[service]
        points = sorted(ctx.rng.uniform(0.1, 0.9) for _ in range(times))
        for p in points:
            ctx.wait_progress(p)
            time.sleep(ctx.rng.uniform(0, 0.5))
            svc.sigkill()
            down = ctx.rng.uniform(0, 1.0)
            ctx.notes.append(
                f"kill at t={ctx.elapsed():.1f}s ({ctx.progress():.0%} of the events produced), down {down:.1f}s"
            )
            time.sleep(down)
            svc.start()

    return fault


def sigkill_each(services: tuple[str, ...], times: int) -> Fault:
    """Every service of ``services`` SIGKILLed ``times`` times at random points of the stream, in random order;
    each restarted after 0-0.5 s."""

    def fault(ctx: FaultContext) -> None:
        plan = [(ctx.rng.uniform(0.05, 0.95), name) for name in services for _ in range(times)]
        for p, name in sorted(plan):
            ctx.wait_progress(p)
            svc = ctx.pipeline.services[name]
            svc.sigkill()
            ctx.notes.append(f"kill {name} at t={ctx.elapsed():.1f}s ({ctx.progress():.0%} of the events produced)")
            time.sleep(ctx.rng.uniform(0, 0.5))
            svc.start()

    return fault


def kafka_restart(down_s: float = 5.0, *, hard: bool = False) -> Fault:
    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.35)
        t0 = time.monotonic()
        if hard:
            ctx.stack.kafka_kill()
        else:
            ctx.stack.kafka_down()
        ctx.notes.append(
            f"broker {'killed' if hard else 'stopped'} at {ctx.progress():.0%} in {time.monotonic() - t0:.1f}s"
        )
        time.sleep(down_s)
        t1 = time.monotonic()
        ctx.stack.kafka_up()
        ctx.notes.append(f"broker down {time.monotonic() - t0:.0f}s (start took {time.monotonic() - t1:.0f}s)")

    return fault


def pg_restart(down_s: float = 5.0) -> Fault:
    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.35)
        t0 = time.monotonic()
        ctx.stack.pg_down()
        time.sleep(down_s)
        ctx.stack.pg_up()
        ctx.notes.append(f"database down {time.monotonic() - t0:.0f}s at {ctx.progress():.0%}")

    return fault


def crm_outage_then_limit(down_s: float = 10.0, limit_s: float = 10.0) -> Fault:
    """The CRM sandbox process is gone for ``down_s``, then answers REQUEST_LIMIT_EXCEEDED for ``limit_s``."""

    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.25)
        sandbox = ctx.pipeline.services["crm_sandbox"]
        sandbox.sigkill()
        time.sleep(down_s)
        sandbox.start()
        ctx.sandbox_faults(limit_exceeded=True)
        time.sleep(limit_s)
        ctx.sandbox_faults(limit_exceeded=False)
        ctx.notes.append(f"CRM down {down_s:.0f}s, then REQUEST_LIMIT_EXCEEDED {limit_s:.0f}s")

    return fault


def model_fault(mode: str, seconds: float, *, bursts: int = 1, gap_s: float = 3.0) -> Fault:
    """The model endpoint answers ``mode`` (429 / 5xx / hang / invalid) for ``seconds``, ``bursts`` times."""

    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.2)
        for b in range(bursts):
            ctx.model.mode = mode
            time.sleep(seconds)
            ctx.model.mode = "ok"
            if b + 1 < bursts:
                time.sleep(gap_s)
        ctx.notes.append(f"model {mode} for {seconds:.0f}s x{bursts}: {ctx.model.faulted} faulted answers")

    return fault


def model_sequence(steps: tuple[tuple[str, float], ...]) -> Fault:
    """The model endpoint goes through several faults in a row."""

    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.2)
        for mode, seconds in steps:
            ctx.model.mode = mode
            time.sleep(seconds)
        ctx.model.mode = "ok"
        ctx.notes.append(
            f"model {' then '.join(f'{m} {s:.0f}s' for m, s in steps)}: {ctx.model.faulted} faulted answers"
        )

    return fault


def replica_kill(times: int = 2) -> Fault:
    """``times`` times per consumer service: SIGKILL one of its running replicas (chosen at random) at a random
    point of the stream, restart it 0-1 s later (same instance id). Restarts run in the background, so the
    next kill lands at its own point of the stream; the fault is over once every killed replica consumes again."""

    def fault(ctx: FaultContext) -> None:
        plan = [(ctx.rng.uniform(0.05, 0.85), name) for name in PIPELINE_SERVICES for _ in range(times)]
        restarting: dict[str, threading.Thread] = {}

        def restart(svc: ServiceProc, down: float) -> None:
            time.sleep(down)
            svc.start()

        for p, name in sorted(plan):
            ctx.wait_progress(p)
            up = [svc for svc in ctx.pipeline.instances(name) if svc.alive and svc.name not in restarting]
            if not up:
                continue
            svc = ctx.rng.choice(up)
            svc.sigkill()
            down = ctx.rng.uniform(0, 1.0)
            ctx.notes.append(f"kill {svc.name} at t={ctx.elapsed():.1f}s ({ctx.progress():.0%}), down {down:.1f}s")
            thread = threading.Thread(target=restart, args=(svc, down), daemon=True)
            restarting[svc.name] = thread
            thread.start()
            for n, t in list(restarting.items()):
                if not t.is_alive():
                    del restarting[n]
        for t in restarting.values():
            t.join(120)

    return fault


def rolling_restart(pause_s: float = 1.0) -> Fault:
    """Every consumer replica in turn: SIGTERM (graceful: drain, commit, leave the group), start it again
    (same instance id), wait until it consumes, ``pause_s``, the next."""

    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.05)
        t0 = time.monotonic()
        for svc in ctx.pipeline.consumers:
            t = time.monotonic()
            svc.stop()
            stopped = time.monotonic() - t
            svc.start()
            ctx.notes.append(f"restart {svc.name}: stop {stopped:.1f}s, start {time.monotonic() - t - stopped:.1f}s")
            time.sleep(pause_s)
        ctx.notes.append(
            f"rolling restart of {len(ctx.pipeline.consumers)} replicas in {time.monotonic() - t0:.0f}s"
            f" (ended at {ctx.progress():.0%} of the stream)"
        )

    return fault


def stop_many(procs: list[ServiceProc]) -> None:
    """SIGTERM them all at once (graceful), wait for each; they are no longer wanted."""
    for svc in procs:
        svc.wanted = False
        if svc.alive and svc.proc is not None:
            svc.proc.send_signal(signal.SIGTERM)
    for svc in procs:
        svc.stop()


def scale_down_to_one(pipeline: ChaosPipeline) -> None:
    """Before the stream: one instance per service (replica 1), the others stopped."""
    stop_many([svc for svc in pipeline.consumers if svc.replica > 1])


def handover_s(
    pipeline: ChaosPipeline, members: dict[str, set[str]], since: float, timeout: float = 60
) -> float | None:
    """Seconds from ``since`` until every group's members are exactly ``members[service]`` (instance ids) and
    they hold every partition of its topics (the broker's view, ``describe_consumer_groups``); None: timeout."""
    admin = AdminClient({"bootstrap.servers": pipeline.stack.bootstrap, "log_level": 0})
    want = {pipeline.groups[s]: (ids, len(pipeline.reads[s]) * pipeline.partitions) for s, ids in members.items()}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = True
        for group, desc in admin.describe_consumer_groups(list(want)).items():
            ids, partitions = want[group]
            try:
                d = desc.result(10)
            except Exception:  # noqa: BLE001 - the coordinator may be busy rebalancing: ask again
                done = False
                break
            held = sum(len(m.assignment.topic_partitions) for m in d.members)
            if {m.group_instance_id for m in d.members} != ids or held != partitions:
                done = False
                break
        if done:
            return time.monotonic() - since
        time.sleep(0.2)
    return None


def scale_1_n_1(up_at: float = 0.15, down_at: float = 0.7, at_full_s: float = 20.0) -> Fault:
    """From one instance per service (see :func:`scale_down_to_one`) to all replicas at ``up_at`` of the
    stream; back to one (graceful stops) at ``down_at``, and at least ``at_full_s`` after every replica
    consumes. Notes how long the partitions took to reach the remaining instance (the broker's view)."""

    def fault(ctx: FaultContext) -> None:
        extra = [svc for svc in ctx.pipeline.consumers if svc.replica > 1]
        ctx.wait_progress(up_at)
        t = time.monotonic()
        for svc in extra:
            svc.wanted = True
        ctx.pipeline.start_all(extra)
        full = time.monotonic()
        ctx.notes.append(
            f"scaled up to {len(ctx.pipeline.consumers)} instances at {ctx.progress():.0%} in {full - t:.1f}s"
        )
        ctx.wait_progress(down_at)
        time.sleep(max(0.0, full + at_full_s - time.monotonic()))
        t = time.monotonic()
        at = ctx.progress()
        stop_many(extra)
        stopped = time.monotonic() - t
        ones = {s: {f"{s}-1"} for s in PIPELINE_SERVICES}
        moved = handover_s(ctx.pipeline, ones, t)
        ctx.notes.append(
            f"scaled down to {len(ctx.pipeline.consumers) - len(extra)} instances at {at:.0%}: stopped in "
            f"{stopped:.1f}s,"
            " every partition held by the remaining instance "
            f"{'after more than 60' if moved is None else f'{moved:.1f}'}s"
            " after the SIGTERMs"
        )

    return fault


def broker_partition(cut_s: float = 30.0, at: float = 0.3) -> Fault:
    """Every service cut off from the broker (the Kafka proxy between them stops forwarding) for ``cut_s``."""

    def fault(ctx: FaultContext) -> None:
        proxy = ctx.pipeline.proxy
        if proxy is None:
            raise RuntimeError("broker-partition needs the pipeline's Kafka proxy (via_proxy=True)")
        ctx.wait_progress(at)
        proxy.cut()
        started = ctx.progress()
        time.sleep(cut_s)
        proxy.heal()
        ctx.notes.append(f"services cut off from the broker for {cut_s:.0f}s from {started:.0%} of the stream")

    return fault


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    fault: Fault
    default: bool = True
    """Part of the full run (``make chaos``); the others run when named."""
    bounded: bool = False
    """Part of the bounded run (CI)."""
    replicas: bool = False
    """Runs on the replica pipeline (:data:`REPLICAS` instances, :data:`REPLICA_PARTITIONS` partitions, services
    behind the Kafka proxy) with its own workload size (:data:`REPLICA_EVENTS` over :data:`REPLICA_STREAM_S`,
    :data:`REPLICA_PER_KEY` events per key)."""
    prepare: Callable[[ChaosPipeline], None] | None = None
    """Run before the scenario's stream starts (e.g. scale down)."""
    longer: float = 1.0
    """Its stream lasts this many times the usual, at the usual rate (more events)."""


# the replica scenarios: 3 instances of each AI service, 2 of each sink, 12 partitions, a steady load
REPLICAS = {**dict.fromkeys(AI_SERVICES, 3), "warehouse_writer": 2, "crm_writer": 2}
REPLICA_PARTITIONS = 12
REPLICA_EVENTS = 540
REPLICA_STREAM_S = 90.0
REPLICA_PER_KEY = 3


SINKS = ("warehouse_writer", "crm_writer")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("baseline", "no fault", no_fault),
    Scenario(
        "kill-ai-services",
        "SIGKILL each AI service 2x at random points, restart",
        sigkill_each(AI_SERVICES, 2),
    ),
    Scenario(
        "kill-sinks",
        "SIGKILL warehouse_writer and crm_writer 3x each, restart",
        sigkill_each(SINKS, 3),
    ),
    Scenario(
        "kill-all-once",
        "SIGKILL every service once, random order, restart",
        sigkill_each(PIPELINE_SERVICES, 1),
        default=False,
        bounded=True,
    ),
    Scenario(
        "kill-classifier",
        "SIGKILL ticket_classifier 3x, restart",
        sigkill("ticket_classifier"),
        default=False,
    ),
    Scenario(
        "kill-warehouse",
        "SIGKILL warehouse_writer 3x, restart",
        sigkill("warehouse_writer"),
        default=False,
    ),
    Scenario(
        "kill-crm-writer",
        "SIGKILL crm_writer 3x, restart",
        sigkill("crm_writer"),
        default=False,
    ),
    Scenario(
        "kafka-restart",
        "broker stopped mid-stream, restarted 5 s later",
        kafka_restart(5.0),
    ),
    Scenario(
        "kafka-kill",
        "broker SIGKILLed mid-stream, restarted 5 s later",
        kafka_restart(5.0, hard=True),
        default=False,
    ),
    Scenario(
        "postgres-restart",
        "PostgreSQL stopped mid-stream, restarted 5 s later",
        pg_restart(5.0),
        bounded=True,
    ),
    Scenario(
        "crm-down-then-limit",
        "CRM down 10 s, then REQUEST_LIMIT_EXCEEDED 10 s",
        crm_outage_then_limit(10.0, 10.0),
    ),
    Scenario(
        "crm-down-then-limit-short",
        "CRM down 5 s, then REQUEST_LIMIT_EXCEEDED 5 s",
        crm_outage_then_limit(5.0, 5.0),
        default=False,
        bounded=True,
    ),
    Scenario(
        "llm-429-storm",
        "model answers 429 (Retry-After 1 s) for 20 s",
        model_fault("429", 20.0),
    ),
    Scenario(
        "llm-5xx-bursts",
        "model answers 5xx, 3 bursts of 5 s",
        model_fault("5xx", 5.0, bursts=3),
    ),
    Scenario("llm-hangs", "model hangs (no answer) for 12 s", model_fault("hang", 12.0)),
    Scenario(
        "llm-invalid",
        "model answers non-JSON / out-of-taxonomy for 8 s",
        model_fault("invalid", 8.0),
    ),
    Scenario(
        "llm-mixed",
        "model: 429 4 s, 5xx 4 s, invalid 4 s",
        model_sequence((("429", 4.0), ("5xx", 4.0), ("invalid", 4.0))),
        default=False,
        bounded=True,
    ),
    # --- replicas (their own pipeline: 3 x each AI service, 2 x each sink, 12 partitions)
    Scenario(
        "replica-kill",
        "SIGKILL one replica of each service at random points, 2x per service, restart",
        replica_kill(2),
        replicas=True,
    ),
    Scenario(
        "rolling-restart",
        "SIGTERM every replica in turn (graceful), restart, next",
        rolling_restart(),
        replicas=True,
        longer=4 / 3,  # 120 s: 13 restarts one after another take 80-105 s here
    ),
    Scenario(
        "scale-1-3-1",
        "1 instance per service, scaled to 3 (sinks 2) from 15 %, back to 1 (graceful) at 70 % and >= 20 s at 3",
        scale_1_n_1(),
        replicas=True,
        prepare=scale_down_to_one,
        longer=5
        / 3,  # 150 s: 8 processes take 30-60 s to start on 2 busy cores; the 3-replica phase must be mid-stream
    ),
    Scenario(
        "broker-partition",
        "every service cut off from the broker for 30 s (TCP proxy), then healed",
        broker_partition(30.0),
        replicas=True,
    ),
)


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


__all__ = ["REPLICAS", "SCENARIOS", "FaultContext", "FaultyModel", "Reply", "Scenario", "by_name"]
