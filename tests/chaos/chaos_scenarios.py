"""The faults: what each chaos scenario does to the pipeline while its events stream through.

A fault runs in the runner's thread while :class:`~chaos_workload.StreamProducer`
produces the scenario's events; it returns when the fault is over (the killed
service is running again, the broker or database is back, the CRM or model
endpoint answers normally), which is when recovery time starts to count.
"""

from __future__ import annotations

import random
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
    classify_answer,
)
from chaos_workload import StreamProducer
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
        while (
            self.progress() < fraction
            and time.monotonic() < deadline
            and not self.producer.done.is_set()
        ):
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
        plan = [
            (ctx.rng.uniform(0.05, 0.95), name)
            for name in services
            for _ in range(times)
        ]
        for p, name in sorted(plan):
            ctx.wait_progress(p)
            svc = ctx.pipeline.services[name]
            svc.sigkill()
            ctx.notes.append(
                f"kill {name} at t={ctx.elapsed():.1f}s ({ctx.progress():.0%} of the events produced)"
            )
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
        ctx.notes.append(
            f"broker down {time.monotonic() - t0:.0f}s (start took {time.monotonic() - t1:.0f}s)"
        )

    return fault


def pg_restart(down_s: float = 5.0) -> Fault:
    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.35)
        t0 = time.monotonic()
        ctx.stack.pg_down()
        time.sleep(down_s)
        ctx.stack.pg_up()
        ctx.notes.append(
            f"database down {time.monotonic() - t0:.0f}s at {ctx.progress():.0%}"
        )

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
        ctx.notes.append(
            f"CRM down {down_s:.0f}s, then REQUEST_LIMIT_EXCEEDED {limit_s:.0f}s"
        )

    return fault


def model_fault(
    mode: str, seconds: float, *, bursts: int = 1, gap_s: float = 3.0
) -> Fault:
    """The model endpoint answers ``mode`` (429 / 5xx / hang / invalid) for ``seconds``, ``bursts`` times."""

    def fault(ctx: FaultContext) -> None:
        ctx.wait_progress(0.2)
        for b in range(bursts):
            ctx.model.mode = mode
            time.sleep(seconds)
            ctx.model.mode = "ok"
            if b + 1 < bursts:
                time.sleep(gap_s)
        ctx.notes.append(
            f"model {mode} for {seconds:.0f}s x{bursts}: {ctx.model.faulted} faulted answers"
        )

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


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    fault: Fault
    default: bool = True
    """Part of the full run (``make chaos``); the others run when named."""
    bounded: bool = False
    """Part of the bounded run (CI)."""


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
    Scenario(
        "llm-hangs", "model hangs (no answer) for 12 s", model_fault("hang", 12.0)
    ),
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
)


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


__all__ = ["SCENARIOS", "FaultContext", "FaultyModel", "Reply", "Scenario", "by_name"]
