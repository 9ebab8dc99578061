"""A broker restart under a running ConsumerService, on a private broker: /healthz turns unhealthy while
the member is out of its group longer than the limit, healthy again once it rejoins, and nothing is lost.

The broker is this module's own (``infra/stack.sh kafka-up`` with another run folder and free ports
picked at start; ``CRMPILOT_LIVENESS_KAFKA_PORT`` / ``CRMPILOT_LIVENESS_CONTROLLER_PORT`` fix them): the shared stack
of ``infra/stack.sh`` is never stopped. Small group timings (session 6 s, so the liveness limit is 12 s) keep the test
under a minute once the broker is up.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from streamkit import (
    aget,
    case_event,
    committed_and_end,
    metric,
    produce_envelopes,
    read_topic,
)

from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import (
    ConsumerService,
    LifecycleServer,
    MessageContext,
    Output,
    RuntimeSettings,
)
from tests.kafkakit import value_of
from tests.netkit import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
STACK_SH = REPO / "infra" / "stack.sh"
SHARED_PORTS = {9092, 9093, 55432}
P = "crmpilot_consumer_"


@dataclass
class PrivateBroker:
    """A single-node Kafka of this test only, started, stopped and restarted through ``infra/stack.sh``."""

    run_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def sh(self, command: str) -> None:
        env = {
            **os.environ,
            "CRMPILOT_RUN_DIR": str(self.run_dir),
            "CRMPILOT_KAFKA_PORT": str(self.port),
            "CRMPILOT_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }
        log = self.run_dir / "stack.log"
        with log.open("a") as out:
            proc = subprocess.run(
                [str(STACK_SH), command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            raise AssertionError(f"infra/stack.sh {command} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: the private broker cannot start")
    port = int(os.environ.get("CRMPILOT_LIVENESS_KAFKA_PORT") or free_port())
    controller = int(os.environ.get("CRMPILOT_LIVENESS_CONTROLLER_PORT") or free_port())
    while controller == port:
        controller = free_port()
    assert not SHARED_PORTS & {port, controller}, "the restart test must not use the shared stack's ports"
    b = PrivateBroker(tmp_path_factory.mktemp("liveness-broker"), port, controller)
    b.sh("kafka-up")
    try:
        yield b
    finally:
        b.sh("kafka-down")


def _create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for future in admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
    ).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while not set(names) <= set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, f"topics not visible: {names}"
        time.sleep(0.1)


def test_broker_restart_unhealthy_while_out_of_the_group_then_rejoins_and_loses_nothing(
    broker: PrivateBroker, unique_name: Callable[[str], str]
) -> None:
    src, out, group = (
        unique_name("restart-in"),
        unique_name("restart-out"),
        unique_name("group"),
    )
    _create_topics(broker.bootstrap, [src, src + ".dlq", out], partitions=2)
    before, after = 20, 20
    produce_envelopes(broker.bootstrap, src, (case_event(i, f"case-{i % 5}") for i in range(before)))

    async def echo(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        return [Output(out, ctx.key, encode(envelope))]

    settings = RuntimeSettings(
        group_id=group,
        topics=(src,),
        commit_interval_s=0.2,
        session_timeout_ms=6000,  # the broker's group.min.session.timeout.ms
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10_000,
        # librdkafka's group-handler log on stderr: pytest shows it when the test fails (a member that never rejoins)
        consumer_overrides={"debug": "cgrp"},
    )
    assert settings.member_timeout_s == 12.0
    service = ConsumerService(echo, settings, KafkaSettings(bootstrap=broker.bootstrap))
    seen: dict[str, Any] = {}

    async def until(condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; {service.status()}; {service.stats}"
            await asyncio.sleep(0.1)

    async def probe(url: str) -> tuple[int, str]:
        status, body = await aget(url + "/healthz")
        return status, json.loads(body)["reason"]

    async def main() -> None:
        async with LifecycleServer(service.status, port=0) as server:
            url = server.url
            task = asyncio.create_task(service.run())
            try:
                await until(lambda: service.stats.processed == before, "the first records", 30)
                seen["up"] = (
                    await probe(url),
                    await aget(url + "/readyz"),
                    (await aget(url + "/metrics"))[1],
                )

                # every offset committed first: a synchronous commit caught by the outage would hold
                # the consumer thread (and /healthz would rightly say "stuck", not "not a member")
                async def committed_to_end() -> bool:
                    ends = await asyncio.to_thread(committed_and_end, broker.bootstrap, src, group)
                    return all(committed == end for committed, end in ends.values())

                deadline = time.monotonic() + 15
                while not await committed_to_end():
                    assert time.monotonic() < deadline, "the first records were not committed within 15 s"
                    await asyncio.sleep(0.2)

                # the broker goes away: healthy until the member has been out of its group for 12 s
                down_at = time.monotonic()
                await asyncio.to_thread(broker.sh, "kafka-down")
                seen["down_took"] = time.monotonic() - down_at
                probes: list[tuple[float, int, str]] = []
                while not probes or probes[-1][1] == 200:
                    assert time.monotonic() - down_at < 30, f"/healthz never turned unhealthy: {probes[-3:]}"
                    status, reason = await probe(url)
                    probes.append((time.monotonic() - down_at, status, reason))
                    await asyncio.sleep(0.25)
                seen["probes"] = probes
                # a long outage: the runtime rebuilds its consumer once per limit and keeps running
                await until(
                    lambda: service.stats.consumer_rebuilds >= 2, "a second rebuild while the broker is down", 30
                )
                assert not task.done(), "the service stopped during the outage"
                seen["rebuilds_while_down"] = service.stats.consumer_rebuilds
                seen["unhealthy_throughout"] = (await probe(url))[0]
                seen["down_readyz"] = await aget(url + "/readyz")
                seen["down_metrics"] = (await aget(url + "/metrics"))[1]

                # the broker is back: healthy once it rejoins, and it consumes what comes after
                up_at = time.monotonic()
                await asyncio.to_thread(broker.sh, "kafka-up")
                seen["up_took"] = time.monotonic() - up_at
                await until(lambda: service.status().alive, "/healthz healthy again", 30)
                seen["healthy_after_up"] = time.monotonic() - up_at
                seen["rejoined"] = await probe(url)
                await asyncio.to_thread(
                    produce_envelopes,
                    broker.bootstrap,
                    src,
                    (case_event(i, f"case-{i % 5}") for i in range(before, before + after)),
                )
                await until(
                    lambda: service.stats.processed >= before + after,
                    "the records after the restart",
                    30,
                )
                await until(lambda: service.status().ready, "/readyz ready again", 15)
                seen["end"] = (await probe(url), (await aget(url + "/metrics"))[1])
            finally:
                service.stop()
                await asyncio.wait_for(task, 60)

    asyncio.run(main())
    print({k: v for k, v in seen.items() if k in ("down_took", "up_took", "healthy_after_up")})

    (h_status, _), (r_status, _), metrics_up = seen["up"]
    assert (h_status, r_status) == (200, 200)
    assert metric(metrics_up, P + "member", group=group) == 1
    assert metric(metrics_up, P + "alive", group=group) == 1
    assert metric(metrics_up, P + "seconds_without_membership", group=group) == 0

    probes = seen["probes"]
    first_bad_at, status, reason = probes[-1]
    assert status == 503
    assert reason.startswith("not a member of its consumer group for") and "(limit 12s)" in reason, reason
    # healthy for the first 12 s at least (the membership cannot be lost before the broker goes)
    assert first_bad_at >= 12.0 - 0.5, probes
    assert all(s == 200 for t, s, _ in probes if t < 11.5), probes
    assert first_bad_at < 12.0 + 6.0, probes  # and unhealthy soon after the limit
    assert seen["down_readyz"][0] == 503
    down_metrics = seen["down_metrics"]
    assert metric(down_metrics, P + "member", group=group) == 0
    assert metric(down_metrics, P + "alive", group=group) == 0
    assert metric(down_metrics, P + "seconds_without_membership", group=group) > 12
    assert metric(down_metrics, P + "rebalances_total", group=group, kind="lost") >= 1

    assert seen["rejoined"][0] == 200
    (end_status, _), end_metrics = seen["end"]
    assert end_status == 200
    assert metric(end_metrics, P + "member", group=group) == 1
    assert metric(end_metrics, P + "assigned_partitions", group=group) == 2
    # past the limit out of its group, the runtime replaced its Kafka consumer, once per limit (12 s),
    # while the broker was still down, and stayed up; /healthz stayed red until the new consumer joined
    assert seen["rebuilds_while_down"] == 2
    assert seen["unhealthy_throughout"] == 503
    assert metric(end_metrics, P + "rebuilds_total", group=group) >= 2

    outputs = read_topic(broker.bootstrap, out, expect=before + after)
    ids = {json.loads(value_of(m))["id"] for m in outputs}
    assert ids == {f"evt-{i}" for i in range(before + after)}  # nothing lost (a redelivery may duplicate)
    try:
        ends = committed_and_end(broker.bootstrap, src, group)
    except KafkaException as exc:  # pragma: no cover - diagnostics only
        raise AssertionError(f"cannot read the committed offsets: {exc}") from exc
    assert all(committed == end for committed, end in ends.values()), ends
