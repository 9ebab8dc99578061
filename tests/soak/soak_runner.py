"""``python -m tests.soak`` (``make soak``): the real pipeline under a steady load for a long time, watched.

On the chaos suite's own stack (``infra/stack.sh`` on its ports and folder,
``CRMPILOT_CHAOS_*``; never the shared stack) it runs the pipeline exactly as
``make chaos`` does (:class:`chaos_stack.ChaosPipeline`: ``crm_sandbox`` and the
five consumer services as processes, static members, the OpenAI-protocol test
server as the model), then:

1. **capacity**: a burst of ``--capacity-events`` events (60 % cases, 20 %
   emails, 20 % lead requests, as the fault suite) produced at once, timed until
   every effect has landed (warehouse facts, raw events, CRM fields, audit rows):
   events per second of the whole pipeline on this machine, now;
2. **the soak**: ``--minutes`` (``SOAK_MINUTES``, default 60) at ``--load`` of
   that capacity (default 50 %), in rounds of ``--round-seconds`` (each round
   its own CRM records, one event each, produced at a steady rate; the next
   round's records are created while the current one streams);
3. every ``--sample-seconds`` (30 s) the RSS, open file descriptors and threads
   of every service process (``/proc/<pid>``) and the consumer lag of every group
   (end offsets minus committed, summed over partitions), printed every
   ``--print-seconds`` (300 s, or a fifth of a shorter run) and at the end;
4. at the end, once the pipeline has drained: every round's events checked as
   the fault suite checks them (:meth:`chaos_checks.Inspector.verdict`): lost
   and doubled, and nothing dead-lettered (no poison is sent);
5. the bounds (:func:`judge`): from the end of the warm-up (``--warmup-minutes``,
   default 10, or a third of a shorter run) to the end, per pipeline service:
   RSS growth at most ``--max-rss-growth`` (10 %), open fds at most
   ``--max-fd-growth`` (10) more, threads at most ``--max-thread-growth`` (4) more;
   the lag of every group at every sample after the warm-up at most
   ``--max-lag-seconds`` (30 s) of load, and 0 once drained; 0 lost, 0 doubled.

Exit code 0 only when every bound holds. The figures go to
``<run dir>/soak-<time>/soak.json`` as well.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))  # the chaos_* modules

from chaos_checks import Inspector
from chaos_stack import PIPELINE_SERVICES, ChaosPipeline, OwnStack, StackConfig
from chaos_workload import StreamProducer, Workload, build_workload

DEFAULT_MINUTES = 60.0
DEFAULT_LOAD = 0.5
DRAIN_TIMEOUT_S = 300.0


def say(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- what is watched ----------------------------------------------------------------------


@dataclass
class ProcStats:
    rss_kib: int
    fds: int
    threads: int


def proc_stats(pid: int) -> ProcStats | None:
    """RSS, open file descriptors and threads of a process, from ``/proc`` (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return ProcStats(int(fields["VmRSS"].split()[0]), fds, int(fields["Threads"].strip()))


@dataclass
class Sample:
    at_s: float
    """Seconds since the soak started."""
    procs: dict[str, ProcStats | None]
    lag: dict[str, int | None]
    """Per service: its group's lag."""
    produced: int
    pids: dict[str, int | None] = field(default_factory=dict)


class Watch:
    """Samples the services every ``every_s`` from a background thread."""

    def __init__(self, pipeline: ChaosPipeline, inspector: Inspector, every_s: float) -> None:
        self.pipeline, self.inspector, self.every_s = pipeline, inspector, every_s
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.produced = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-watch", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Watch:
        self.started = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def sample(self) -> Sample:
        group_of = self.pipeline.groups
        try:
            lag_by_group: dict[str, int] = self.inspector.lag()
        except Exception:  # noqa: BLE001 - a sample without lag is still a sample
            lag_by_group = {}
        procs: dict[str, ProcStats | None] = {}
        pids: dict[str, int | None] = {}
        for name, svc in self.pipeline.services.items():
            pids[name] = svc.pid
            procs[name] = proc_stats(svc.pid) if svc.pid else None
        s = Sample(
            round(time.monotonic() - self.started, 1),
            procs,
            {name: lag_by_group.get(group_of[svc.service]) if svc.service in group_of else None
             for name, svc in self.pipeline.services.items()},
            self.produced,
            pids,
        )  # fmt: skip
        with self._lock:
            self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()


def table(samples: list[tuple[str, Sample]], services: list[str]) -> str:
    """Per service, per labelled sample: RSS MiB / fds / threads / lag."""
    head = ["service", *(f"{label}: RSS MiB  fds  thr  lag" for label, _ in samples)]
    lines = [head]
    for name in services:
        row = [name]
        for _, s in samples:
            p, lag = s.procs.get(name), s.lag.get(name)
            if p is None:
                row.append("(not running)")
            else:
                row.append(f"{p.rss_kib / 1024:8.1f} {p.fds:4d} {p.threads:4d} {'-' if lag is None else lag:>4}")
        lines.append(row)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = [
        "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


# --- the load --------------------------------------------------------------------------------


def _wait_done(inspector: Inspector, workloads: list[Workload], timeout_s: float) -> float | None:
    """Seconds until every effect of ``workloads`` has landed and every group committed to the end (None: timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            done = all(
                all(v >= t for v, t in zip(inspector.progress(w).values(), inspector.targets(w).values(), strict=True))
                for w in workloads
            )
            if done and not inspector.stalled_groups():
                return time.monotonic() - t0
        except Exception:  # noqa: BLE001 - keep waiting; a real failure shows as a timeout
            pass
        time.sleep(0.5)
    return None


def measure_capacity(pipeline: ChaosPipeline, inspector: Inspector, events: int, bootstrap: str, seed: int) -> float:
    """Events per second of the whole pipeline: a burst of ``events`` produced at once, until every effect landed."""
    w = build_workload(
        f"soak-cap-{uuid.uuid4().hex[:4]}", pipeline.sandbox_url, pipeline.ca_path, events, poison=0, seed=seed
    )
    t0 = time.monotonic()
    StreamProducer(bootstrap, pipeline.source_topics, w, 0.0).start()
    took = _wait_done(inspector, [w], DRAIN_TIMEOUT_S)
    if took is None:
        raise RuntimeError(f"the capacity burst of {events} events did not complete within {DRAIN_TIMEOUT_S:.0f}s")
    return events / (time.monotonic() - t0)


@dataclass
class SoakResult:
    capacity: float
    rate: float
    minutes: float
    rounds: int
    events: int
    lost: int
    duplicated: int
    dead_lettered: int
    drained_s: float | None
    samples: list[Sample]
    warmup_s: float
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Bounds:
    rss_growth: float = 0.10
    fd_growth: int = 10
    thread_growth: int = 4
    lag_seconds: float = 30.0


def judge(result: SoakResult, services: list[str], bounds: Bounds) -> list[str]:
    """What breaks a bound (empty: the soak holds); see the module docstring."""
    failures: list[str] = []
    after = [s for s in result.samples if s.at_s >= result.warmup_s]
    if len(after) < 2:
        return [f"too few samples after the warm-up ({len(after)})"]
    first, last = after[0], after[-1]
    for name in services:
        a, b = first.procs.get(name), last.procs.get(name)
        if a is None or b is None:
            failures.append(f"{name} was not running at the end of the warm-up or at the end")
            continue
        if first.pids.get(name) != last.pids.get(name):
            failures.append(
                f"{name} was restarted during the soak (pid {first.pids.get(name)} -> {last.pids.get(name)})"
            )
        growth = b.rss_kib / a.rss_kib - 1
        if growth > bounds.rss_growth:
            failures.append(
                f"{name}: RSS grew {growth:+.1%} after the warm-up ({a.rss_kib // 1024} -> {b.rss_kib // 1024} MiB)"
            )
        if b.fds - a.fds > bounds.fd_growth:
            failures.append(f"{name}: open fds {a.fds} -> {b.fds}")
        if b.threads - a.threads > bounds.thread_growth:
            failures.append(f"{name}: threads {a.threads} -> {b.threads}")
        limit = result.rate * bounds.lag_seconds
        worst = max((s.lag.get(name) or 0 for s in after[:-1]), default=0)
        if worst > limit:
            failures.append(
                f"{name}: lag reached {worst} records after the warm-up (bound {limit:.0f}: "
                f"{bounds.lag_seconds:.0f}s of load)"
            )
        if last.lag.get(name):
            failures.append(f"{name}: lag {last.lag.get(name)} after draining")
    if result.drained_s is None:
        failures.append("the pipeline did not drain after the load stopped")
    if result.lost or result.duplicated:
        failures.append(f"{result.lost} lost, {result.duplicated} doubled")
    if result.dead_lettered:
        failures.append(f"{result.dead_lettered} records dead-lettered (no poison was sent)")
    return failures


def soak(
    minutes: float = DEFAULT_MINUTES,
    *,
    load: float = DEFAULT_LOAD,
    rate: float | None = None,
    round_s: float = 60.0,
    sample_s: float = 30.0,
    print_s: float | None = None,
    warmup_minutes: float | None = None,
    capacity_events: int = 600,
    bounds: Bounds = Bounds(),
    seed: int | None = None,
    config: StackConfig | None = None,
    keep_stack: bool = False,
) -> SoakResult:
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print_s = print_s or min(300.0, max(30.0, minutes * 60 / 5))
    warmup_s = 60 * (warmup_minutes if warmup_minutes is not None else min(10.0, minutes / 3))
    stack = OwnStack(config, log=say)
    workdir = stack.config.run_dir / f"soak-{time.strftime('%Y%m%dT%H%M%S')}"
    say(
        f"seed {seed}; own stack in {stack.config.run_dir} (Kafka {stack.bootstrap}, PostgreSQL "
        f":{stack.config.pg_port}); logs in {workdir}"
    )
    stack.up()
    pipeline = ChaosPipeline(stack, workdir)
    inspector: Inspector | None = None
    watch: Watch | None = None
    services = list(PIPELINE_SERVICES)
    try:
        pipeline.setup()
        say(f"pipeline up: {', '.join(pipeline.services)} (static members, {pipeline.partitions} partitions)")
        inspector = Inspector(
            pipeline.database_url, stack.bootstrap,
            {pipeline.groups[name]: topics for name, topics in pipeline.reads.items()},
            pipeline.partitions, {t + ".dlq": name for name, t in pipeline.source_topics.items()},
        )  # fmt: skip
        dlq_topics = [t + ".dlq" for t in (*pipeline.source_topics.values(), *pipeline.result_topics.values())]
        measure_capacity(
            pipeline, inspector, 60, stack.bootstrap, rng.randrange(1 << 30)
        )  # warm-up: connections, imports
        capacity = measure_capacity(pipeline, inspector, capacity_events, stack.bootstrap, rng.randrange(1 << 30))
        rate = rate or load * capacity
        per_round = max(10, round(rate * round_s))
        say(f"capacity {capacity:.1f} events/s ({capacity_events} at once); soak at {rate:.1f} events/s"
            f" ({per_round} per {round_s:.0f}s round) for {minutes:g} min; warm-up {warmup_s / 60:g} min")  # fmt: skip
        dlq_start = {t: sum(inspector.end_offsets(t).values()) for t in dlq_topics}
        watch = Watch(pipeline, inspector, sample_s).start()
        workloads: list[Workload] = []
        end = watch.started + minutes * 60
        next_print = watch.started + print_s
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-records")

        def make(i: int) -> Workload:
            return build_workload(f"soak-{i}-{uuid.uuid4().hex[:4]}", pipeline.sandbox_url, pipeline.ca_path, per_round,
                                  poison=0, seed=rng.randrange(1 << 30))  # fmt: skip

        upcoming: Future[Workload] = pool.submit(make, 0)
        i = 0
        while time.monotonic() < end:
            w = upcoming.result()
            i += 1
            upcoming = pool.submit(make, i)
            left = end - time.monotonic()
            if left < round_s / 4:
                break
            n = len(w.items) if left >= round_s else max(1, int(len(w.items) * left / round_s))
            w = Workload(w.scenario, w.items[:n], w.poison)
            producer = StreamProducer(stack.bootstrap, pipeline.source_topics, w, min(round_s, left)).start()
            while not producer.done.wait(1.0):
                watch.produced = sum(len(x.items) for x in workloads) + producer.delivered
                if time.monotonic() >= next_print:
                    next_print += print_s
                    _print_now(watch, services, rate)
            if producer.errors:
                say(f"  producer errors: {producer.errors[:3]}")
            workloads.append(w)
            watch.produced = sum(len(x.items) for x in workloads)
        pool.shutdown(wait=False, cancel_futures=True)
        say(
            f"load stopped after {(time.monotonic() - watch.started) / 60:.1f} min: {watch.produced} events in "
            f"{len(workloads)} rounds; draining"
        )
        drained = _wait_done(inspector, workloads[-3:], DRAIN_TIMEOUT_S)
        watch.stop()
        final = watch.sample()
        lost = duplicated = 0
        verdicts = []
        for w in workloads:
            v = inspector.verdict(w, {}, {})
            lost += len(v.lost)
            duplicated += len(v.duplicated)
            if v.lost or v.duplicated:
                verdicts.append(
                    {
                        "round": w.scenario,
                        "missing": v.details.get("missing"),
                        "doubled": v.details.get("doubled"),
                        "examples": v.details.get("examples"),
                    }
                )
        dead = sum(sum(inspector.end_offsets(t).values()) for t in dlq_topics) - sum(dlq_start.values())
        result = SoakResult(
            capacity,
            rate,
            minutes,
            len(workloads),
            sum(len(w.items) for w in workloads),
            lost,
            duplicated,
            dead,
            drained,
            watch.samples,
            warmup_s,
            verdicts,
        )
        result.failures = judge(result, services, bounds)
        warm = next((s for s in watch.samples if s.at_s >= warmup_s), final)
        say("start / end of the warm-up / end (after draining):")
        print(
            table(
                [("start", watch.samples[0]), (f"{warm.at_s / 60:.0f} min", warm), ("end", final)],
                list(pipeline.services),
            ),
            flush=True,
        )
        say(
            f"{result.events} events in {result.rounds} rounds at {rate:.1f}/s ({rate / capacity:.0%} of "
            f"{capacity:.1f}/s):"
            f" lost {lost}, doubled {duplicated}, dead-lettered {dead}, drained in"
            f" {'-' if drained is None else f'{drained:.1f}s'}"
        )
        for f in result.failures:
            say(f"  FAIL {f}")
        if result.ok:
            say("  OK every bound holds")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "soak.json").write_text(json.dumps(asdict(result), indent=2, default=str))
        return result
    finally:
        if watch is not None:
            watch.stop()
        if inspector is not None:
            inspector.close()
        pipeline.teardown(drop=not keep_stack)
        if not keep_stack:
            stack.down()


def _print_now(watch: Watch, services: list[str], rate: float) -> None:
    s = watch.sample()
    say(f"t={s.at_s / 60:.1f} min, {s.produced} events produced ({rate:.1f}/s)")
    print(table([("now", s)], list(watch.pipeline.services)), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", DEFAULT_MINUTES)),
                        help="how long the load runs (SOAK_MINUTES; default 60)")  # fmt: skip
    parser.add_argument(
        "--load", type=float, default=DEFAULT_LOAD, help="fraction of the measured capacity (default 0.5)"
    )
    parser.add_argument("--rate", type=float, help="events per second instead (no fraction of the capacity)")
    parser.add_argument("--round-seconds", type=float, default=60.0)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--print-seconds", type=float, help="default 300, or a fifth of a shorter run")
    parser.add_argument("--warmup-minutes", type=float, help="default 10, or a third of a shorter run")
    parser.add_argument("--capacity-events", type=int, default=600)
    parser.add_argument("--max-rss-growth", type=float, default=Bounds.rss_growth)
    parser.add_argument("--max-fd-growth", type=int, default=Bounds.fd_growth)
    parser.add_argument("--max-thread-growth", type=int, default=Bounds.thread_growth)
    parser.add_argument("--max-lag-seconds", type=float, default=Bounds.lag_seconds)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep-stack", action="store_true")
    args = parser.parse_args(argv)
    result = soak(
        args.minutes, load=args.load, rate=args.rate, round_s=args.round_seconds, sample_s=args.sample_seconds,
        print_s=args.print_seconds, warmup_minutes=args.warmup_minutes, capacity_events=args.capacity_events,
        bounds=Bounds(args.max_rss_growth, args.max_fd_growth, args.max_thread_growth, args.max_lag_seconds),
        seed=args.seed, keep_stack=args.keep_stack,
    )  # fmt: skip
    return 0 if result.ok else 1
