"""``python -m tests.chaos``: the fault suite on a stack of its own, with a table of figures.

Brings up its own Kafka + PostgreSQL (``infra/stack.sh`` on ports 29092 /
29093 / 55442, folder ``/tmp/chaos-run``; never the shared stack), runs the
CRM sandbox and the pipeline services as processes, and plays the scenarios
of :mod:`chaos_scenarios` one after the other on the same running pipeline.
Each scenario creates its own Case records and streams one event per case
(plus a few poison records) while its fault happens, waits until every effect
has landed (or a timeout), then checks (:mod:`chaos_checks`) and prints::

    scenario  events  lost  duplicated  order  DLQ  recovery

``recovery`` is the time from the later of "fault over" and "last event
produced" until every result is in the warehouse and applied in the CRM, the
poison is dead-lettered and every group has committed to the end. ``order``
(:meth:`chaos_checks.Inspector.order`): per key, results and applied CRM
changes in the order of their source offsets (a real test where a key has
several events, the replica scenarios; elsewhere one event per key, so it only
checks that each result names its event's source offset).

The replica scenarios (``Scenario.replicas``: ``replica-kill``,
``rolling-restart``, ``scale-1-3-1``, ``broker-partition``) run afterwards on a
second pipeline: 3 instances of each AI service and 2 of each sink
(``<service>-<n>``, each its own static instance id), 12-partition topics, the
services behind a fault-injecting Kafka proxy, and 540 events (3 per key) over
90 s per scenario.

After the scenarios, every service log is searched for the planted secrets.
Exit code 0 only when every scenario holds (no loss, no duplicate, DLQ exactly
the poison, no stall) and no secret leaked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_checks import Inspector, Verdict
from chaos_scenarios import (
    REPLICA_EVENTS,
    REPLICA_PARTITIONS,
    REPLICA_PER_KEY,
    REPLICA_STREAM_S,
    REPLICAS,
    SCENARIOS,
    FaultContext,
    FaultyModel,
    Scenario,
    by_name,
)
from chaos_stack import (
    PLANTED,
    STATIC_SESSION_TIMEOUT_MS,
    ChaosPipeline,
    OwnStack,
    StackConfig,
)
from chaos_workload import StreamProducer, build_workload

DEFAULT_EVENTS = 400
DEFAULT_STREAM_S = 12.0
DEFAULT_POISON = 1
SCENARIO_TIMEOUT_S = 180.0
SETTLE_S = 10.0


def say(text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class Row:
    scenario: str
    what: str
    events: int
    lost: int
    duplicated: int
    dlq_found: int
    dlq_expected: int
    recovery_s: float | None
    ok: bool
    dlq_copies: int = 0
    results_produced: int = 0
    llm_requests: int = 0
    order: str = "-"
    """``ok``, the number of keys out of order, or ``-`` (not checked)."""
    order_keys: int = 0
    instances: int = 0
    """Consumer service instances at the start of the scenario."""
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def run_scenario(
    scenario: Scenario,
    *,
    stack: OwnStack,
    pipeline: ChaosPipeline,
    inspector: Inspector,
    model: FaultyModel,
    events: int,
    stream_s: float,
    poison: int,
    rng: random.Random,
    timeout_s: float = SCENARIO_TIMEOUT_S,
    per_key: int = 1,
) -> Row:
    restarted = pipeline.ensure_running(everyone=True)
    instances = len(pipeline.consumers)
    model.mode, model.faulted = "ok", 0
    tag = f"{scenario.name}-{uuid.uuid4().hex[:4]}"
    workload = build_workload(
        tag,
        pipeline.sandbox_url,
        pipeline.ca_path,
        events,
        poison=poison,
        seed=rng.randrange(1 << 30),
        per_key=per_key,
    )
    if scenario.prepare is not None:
        scenario.prepare(pipeline)
    dlq = {
        t + ".dlq": inspector.end_offsets(t + ".dlq")
        for t in (*pipeline.source_topics.values(), *pipeline.result_topics.values())
    }
    results_at = {t: inspector.end_offsets(t) for t in pipeline.result_topics.values()}
    results_start = sum(sum(o.values()) for o in results_at.values())
    assert pipeline.llm is not None
    llm_before = pipeline.llm.request_count
    producer = StreamProducer(stack.bootstrap, pipeline.source_topics, workload, stream_s).start()
    ctx = FaultContext(stack, pipeline, producer, model, rng, say)
    counts = Counter(i.service for i in workload.items)
    say(
        f"{scenario.name}: {scenario.what} ({counts['ticket_classifier']} case events, "
        f"{counts['email_summarizer']} emails,"
        f" {counts['enricher']} lead requests over {stream_s:.0f}s, {len(workload.per_record)} keys;"
        f" {workload.poison_count} poison; {instances} consumer instances)"
    )
    scenario.fault(ctx)
    fault_end = time.monotonic()
    producer.done.wait(300)
    stream_end = producer.finished_at or time.monotonic()
    start = max(fault_end, stream_end)
    expected_dlq = 2 * workload.poison_count  # each source topic is read by its AI service and the warehouse writer
    done_at: float | None = None
    last: dict[str, Any] = {}
    deadline = start + timeout_s
    settled_since: float | None = None
    targets = inspector.targets(workload)
    while time.monotonic() < deadline:
        died = [n for n, s in pipeline.services.items() if s.wanted and not s.alive]
        if died:
            ctx.notes.append(f"{', '.join(died)} exited on its own; restarted")
            say(f"  {', '.join(died)} exited on its own: restarting")
            pipeline.ensure_running()
        try:
            p = inspector.progress(workload)
            dlq_now = sum(sum(inspector.end_offsets(t).values()) - sum(s.values()) for t, s in dlq.items())
            complete = all(p[k] >= t for k, t in targets.items()) and dlq_now >= expected_dlq
            now = {**p, "dlq": dlq_now}
            stalled = inspector.stalled_groups()
            if complete and not stalled:
                done_at = time.monotonic()
                break
            # every group committed to the end and nothing moves: what is missing will not come
            if not stalled and now == last:
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since > SETTLE_S:
                    say(
                        "  settled incomplete: every group is at the end of its topics, nothing changed for "
                        f"{SETTLE_S:.0f}s"
                    )
                    break
            else:
                settled_since = None
            last = now
        except Exception as exc:  # noqa: BLE001 - the database or broker may still be coming back
            last = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            settled_since = None
        time.sleep(0.5)
    if done_at is None:
        say(f"  not complete: {last}")
    readers = {t + ".dlq": 2 for t in pipeline.source_topics.values()}
    verdict: Verdict = inspector.verdict(workload, dlq, readers, results_start=results_at, produced=producer.offsets)
    results_end = sum(sum(inspector.end_offsets(t).values()) for t in pipeline.result_topics.values())
    row = Row(
        scenario=scenario.name,
        what=scenario.what,
        events=events,
        lost=len(verdict.lost),
        duplicated=len(verdict.duplicated),
        dlq_found=verdict.dlq_distinct,
        dlq_copies=verdict.dlq_copies,
        dlq_expected=verdict.dlq_expected,
        recovery_s=None if done_at is None else round(done_at - start, 1),
        ok=verdict.ok and done_at is not None,
        results_produced=results_end - results_start,
        llm_requests=pipeline.llm.request_count - llm_before,
        order=("ok" if not verdict.order_violations else f"{len(verdict.order_violations)} keys")
        if verdict.order_checked
        else "-",
        order_keys=verdict.order_checked,
        instances=instances,
        notes=[
            *(f"{n} was not running at the start" for n in restarted),
            *ctx.notes,
            *producer.errors,
        ],
        details={
            **verdict.details,
            "dlq_codes": dict(verdict.dlq_codes),
            "dlq_unexpected": verdict.dlq_unexpected[:10],
            "stalled": verdict.stalled,
            "order_violations": verdict.order_violations[:10],
            "last_progress": last,
        },
    )
    say(
        f"  {'OK ' if row.ok else 'FAIL'} lost={row.lost} duplicated={row.duplicated} order={row.order} "
        f"({row.order_keys} keys)"
        f" DLQ={row.dlq_found}/{row.dlq_expected}"
        f"{f' (+{row.dlq_copies} redelivered copies)' if row.dlq_copies else ''}"
        f" recovery={row.recovery_s}s results={row.results_produced} llm_requests={row.llm_requests}"
    )
    for n in row.notes:
        say(f"    {n}")
    if not row.ok:
        say(f"    details: {json.dumps(row.details, default=str)}")
    return row


def heal(pipeline: ChaosPipeline, row: Row) -> None:
    """A service whose group is still behind after its scenario is stuck: restart it so the next scenario starts clean.

    (The scenario has already failed and says so; this only keeps the following ones independent.)
    """
    by_group = {group: name for name, group in pipeline.groups.items()}
    stuck = sorted({by_group[s.split()[0]] for s in row.details.get("stalled", []) if s.split()[0] in by_group})
    for name in stuck:
        say(f"  {name} is stuck (its group never caught up): restarting it before the next scenario")
        for svc in pipeline.instances(name):
            if svc.wanted:
                svc.stop()
                svc.start()
        row.notes.append(f"{name} was stuck at the end of the scenario and was restarted")


def scan_logs(pipeline: ChaosPipeline, secrets: dict[str, str]) -> dict[str, list[str]]:
    """Which planted secrets appear in which service log (the sandbox's log is the fake CRM's, not ours)."""
    leaks: dict[str, list[str]] = {}
    for name, text in pipeline.logs_text().items():
        if name == "crm_sandbox":
            continue
        for what, value in secrets.items():
            if value in text:
                leaks.setdefault(name, []).append(what)
    return leaks


def scan_model_requests(pipeline: ChaosPipeline, secrets: dict[str, str]) -> list[str]:
    assert pipeline.llm is not None
    body = pipeline.llm.received_bytes()
    return [what for what, value in secrets.items() if value.encode() in body]


def table(rows: list[Row]) -> str:
    head = (
        "scenario",
        "events",
        "lost",
        "duplicated",
        "order",
        "DLQ (poison)",
        "recovery s",
        "results",
        "LLM calls",
        "",
    )
    lines = [head]
    for r in rows:
        lines.append(
            (
                r.scenario,
                str(r.events),
                str(r.lost),
                str(r.duplicated),
                r.order,
                f"{r.dlq_found}/{r.dlq_expected}" + (f" +{r.dlq_copies}" if r.dlq_copies else ""),
                "incomplete" if r.recovery_s is None else f"{r.recovery_s:.1f}",
                str(r.results_produced),
                str(r.llm_requests),
                "ok" if r.ok else "FAIL",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for i, line in enumerate(lines):
        out.append(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


@dataclass
class RunResult:
    rows: list[Row]
    leaks: dict[str, list[str]]
    request_leaks: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and not self.leaks and not self.request_leaks


def run(
    scenarios: list[Scenario],
    *,
    events: int = DEFAULT_EVENTS,
    stream_s: float = DEFAULT_STREAM_S,
    poison: int = DEFAULT_POISON,
    seed: int | None = None,
    workdir: Path | None = None,
    keep_stack: bool = False,
    config: StackConfig | None = None,
    static_membership: bool = True,
    replica_events: int = REPLICA_EVENTS,
    replica_stream_s: float = REPLICA_STREAM_S,
    per_key: int = REPLICA_PER_KEY,
    leave_on_stop: bool = True,
) -> RunResult:
    """Run ``scenarios`` on the chaos stack: the one-instance ones on one pipeline, then the replica ones
    (``Scenario.replicas``) on a pipeline of :data:`REPLICAS` instances over :data:`REPLICA_PARTITIONS`
    partitions, with ``replica_events`` (``per_key`` per key) over ``replica_stream_s`` each."""
    t0 = time.monotonic()
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    stack = OwnStack(config, log=say)
    workdir = workdir or stack.config.run_dir / f"run-{time.strftime('%Y%m%dT%H%M%S')}"
    say(f"code: {_code_version()}")
    say(
        f"seed {seed}; own stack in {stack.config.run_dir} (Kafka {stack.bootstrap}, PostgreSQL "
        f":{stack.config.pg_port}); logs in {workdir}"
    )
    stack.up()
    model = FaultyModel()
    rows: list[Row] = []
    leaks: dict[str, list[str]] = {}
    request_leaks: list[str] = []
    plans = [
        (False, [s for s in scenarios if not s.replicas]),
        (True, [s for s in scenarios if s.replicas]),
    ]
    try:
        for replicated, chosen in plans:
            if not chosen:
                continue
            layout: dict[str, Any] = (
                {"replicas": REPLICAS, "partitions": REPLICA_PARTITIONS, "via_proxy": True} if replicated else {}
            )
            pipeline = ChaosPipeline(
                stack,
                workdir / "replicas" if replicated else workdir,
                answer=model,
                static_membership=static_membership,
                leave_on_stop=leave_on_stop,
                **layout,
            )
            sizes = (replica_events, replica_stream_s, per_key) if replicated else (events, stream_s, 1)
            found = _run_on(pipeline, chosen, stack=stack, model=model, rng=rng, poison=poison, sizes=sizes,
                            keep=keep_stack, static_membership=static_membership)  # fmt: skip
            rows.extend(found[0])
            for name, what in found[1].items():
                leaks.setdefault(name, []).extend(what)
            request_leaks.extend(w for w in found[2] if w not in request_leaks)
    finally:
        if not keep_stack:
            stack.down()
    result = RunResult(rows, leaks, request_leaks, time.monotonic() - t0)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "chaos-results.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "seconds": result.seconds,
                "rows": [r.__dict__ for r in rows],
                "leaks": leaks,
            },
            indent=2,
            default=str,
        )
    )
    return result


def _run_on(
    pipeline: ChaosPipeline,
    scenarios: list[Scenario],
    *,
    stack: OwnStack,
    model: FaultyModel,
    rng: random.Random,
    poison: int,
    sizes: tuple[int, float, int],
    keep: bool,
    static_membership: bool,
) -> tuple[list[Row], dict[str, list[str]], list[str]]:
    """Set up ``pipeline``, play ``scenarios`` on it, search its logs, tear it down."""
    events, stream_s, per_key = sizes
    rows: list[Row] = []
    leaks: dict[str, list[str]] = {}
    request_leaks: list[str] = []
    inspector: Inspector | None = None
    try:
        pipeline.setup()
        say(
            f"pipeline up: topics chaos.{pipeline.run}.* ({pipeline.partitions} partitions), database {pipeline.db},"
            f" sandbox {pipeline.sandbox_url}, model {pipeline.llm.base_url if pipeline.llm else '-'}"
            + (f", services reach Kafka through the proxy {pipeline.proxy.address}" if pipeline.proxy else "")
        )
        say(f"services: {', '.join(pipeline.services)}")
        on_stop = (
            "leaves its group on SIGTERM"
            if pipeline.leave_on_stop
            else "stays in its group on SIGTERM (LEAVE_GROUP_ON_STOP=false)"
        )
        say(
            "group membership: static (group.instance.id <service>-<replica>, session "
            f"{STATIC_SESSION_TIMEOUT_MS / 1000:.0f}s, {on_stop})"
            if static_membership
            else "group membership: dynamic (no group.instance.id, default session)"
        )
        inspector = Inspector(
            pipeline.database_url,
            stack.bootstrap,
            {pipeline.groups[name]: topics for name, topics in pipeline.reads.items()},
            pipeline.partitions,
            {t + ".dlq": name for name, t in pipeline.source_topics.items()},
        )
        for scenario in scenarios:
            row = run_scenario(
                scenario, stack=stack, pipeline=pipeline, inspector=inspector, model=model,
                events=round(events * scenario.longer), stream_s=stream_s * scenario.longer, poison=poison, rng=rng,
                per_key=per_key,
            )  # fmt: skip
            rows.append(row)
            heal(pipeline, row)
        leaks = scan_logs(pipeline, PLANTED)
        request_leaks = scan_model_requests(pipeline, PLANTED)
    finally:
        if inspector is not None:
            inspector.close()
        pipeline.teardown(drop=not keep)
    return rows, leaks, request_leaks


def _code_version() -> str:
    snapshot = os.environ.get("CRMPILOT_CHAOS_SNAPSHOT")
    if snapshot:
        return f"committed snapshot {snapshot}"
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "working tree (no git)"
    return f"working tree {out.stdout.strip()}"


def report(result: RunResult) -> str:
    lines = [table(result.rows), ""]
    for r in result.rows:
        if r.ok:
            continue
        what = []
        if r.details.get("missing"):
            what.append("missing " + ", ".join(f"{k} x{n}" for k, n in r.details["missing"].items()))
        if r.details.get("doubled"):
            what.append("doubled " + ", ".join(f"{k} x{n}" for k, n in r.details["doubled"].items()))
        if r.details.get("dlq_unexpected"):
            what.append(f"unexpected dead letters: {r.details['dlq_unexpected'][:3]}")
        if r.details.get("stalled"):
            what.append(f"stalled: {r.details['stalled'][:3]}")
        lines.append(f"  {r.scenario}: {'; '.join(what) or 'not complete'}")
    lines.append(
        f"{sum(r.events for r in result.rows)} events in {len(result.rows)} scenarios, {result.seconds:.0f}s; "
        f"planted secrets in service logs: {result.leaks or 'none'}; in model requests: "
        f"{result.request_leaks or 'none'}"
    )
    lines.append(
        "lost/duplicated: input events with a missing/doubled effect (warehouse fact, raw event, CRM field, "
        "CRM update, audit row);"
        " DLQ: poison records dead-lettered / expected (+ redelivered copies); recovery: seconds from the end "
        "of the fault"
        " and of the stream until every effect landed; results: result records produced (more than events = "
        "redelivered);"
        " LLM calls: requests the model endpoint received"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help=f"source events per scenario: 60%% cases, 20%% emails, 20%% lead requests (default {DEFAULT_EVENTS})",
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=DEFAULT_STREAM_S,
        help="how long each scenario's events take to produce",
    )
    parser.add_argument(
        "--poison",
        type=int,
        default=DEFAULT_POISON,
        help="poison records per source topic and scenario",
    )
    parser.add_argument("--scenario", action="append", help="run only these (repeatable); default: all")
    parser.add_argument(
        "--bounded",
        action="store_true",
        help="only the scenarios of the bounded (CI) run",
    )
    parser.add_argument("--seed", type=int, help="random seed (kill points), printed on every run")
    parser.add_argument(
        "--membership",
        choices=("static", "dynamic"),
        default="static",
        help="consumer group membership of the services: static (group.instance.id <service>-1, 30 s session,"
        " as infra/services.sh runs them; default) or dynamic (no instance id, 45 s session: the figures "
        "before issue 18)",
    )
    parser.add_argument(
        "--replica-events",
        type=int,
        default=REPLICA_EVENTS,
        help=f"source events per replica scenario, {REPLICA_PER_KEY} per key (default {REPLICA_EVENTS})",
    )
    parser.add_argument(
        "--replica-stream-seconds",
        type=float,
        default=REPLICA_STREAM_S,
        help=f"how long each replica scenario's events take to produce (default {REPLICA_STREAM_S:.0f})",
    )
    parser.add_argument(
        "--leave-on-stop",
        choices=("on", "off"),
        default="on",
        help="on (default): a static member leaves its group on SIGTERM; off: LEAVE_GROUP_ON_STOP=false, it stays"
        " (KIP-345) and its partitions wait for the session",
    )
    parser.add_argument(
        "--keep-stack",
        action="store_true",
        help="leave the chaos stack, topics and database up afterwards",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            tags = "".join(
                t for t, on in (("[full] ", s.default), ("[bounded] ", s.bounded), ("[replicas] ", s.replicas)) if on
            )
            print(f"{s.name:<26} {tags:<28}{s.what}")
        return 0
    if args.scenario:
        scenarios = by_name(args.scenario)
    else:
        scenarios = [s for s in SCENARIOS if (s.bounded if args.bounded else s.default)]
    result = run(
        scenarios,
        events=args.events,
        stream_s=args.stream_seconds,
        poison=args.poison,
        seed=args.seed,
        keep_stack=args.keep_stack,
        static_membership=args.membership == "static",
        replica_events=args.replica_events,
        replica_stream_s=args.replica_stream_seconds,
        leave_on_stop=args.leave_on_stop == "on",
    )
    print()
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
