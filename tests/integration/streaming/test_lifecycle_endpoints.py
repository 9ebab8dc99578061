"""/healthz, /readyz and /metrics of a consumer service on the real broker, in process and through run_service."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from streamkit import aget, case_event, http_get, metric, produce_envelopes, produce_raw, read_topic, samples

from crmpilot.errors import Retryable
from crmpilot.events import Envelope, encode
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import ConsumerService, LifecycleServer, MessageContext, Output, RuntimeSettings
from tests.kafkakit import headers_of, value_of
from tests.netkit import free_port

pytestmark = pytest.mark.integration

SERVICE = Path(__file__).with_name("lifecycle_service.py")
P = "crmpilot_consumer_"


def test_probes_follow_the_service_and_the_metrics_count_what_it_did(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    src = unique_topic("life-in", partitions=3, with_dlq=True)
    out = unique_topic("life-out", partitions=3)
    group = unique_name("group")
    n, keys = 60, 10
    produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"case-{i % keys}") for i in range(n)))
    produce_raw(kafka_settings.bootstrap, src, [(b"bad", b"{not json", [])])
    gate = asyncio.Event()

    async def handle(envelope: Envelope[Any], ctx: MessageContext) -> Sequence[Output]:
        await gate.wait()
        if envelope.subject == "case-3" and ctx.attempt == 1:
            raise Retryable("model endpoint said 503")
        return [Output(out, ctx.key, encode(envelope))]

    settings = RuntimeSettings(
        group_id=group,
        topics=(src,),
        max_in_flight=16,
        commit_interval_s=0.2,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )
    service = ConsumerService(handle, settings, kafka_settings)

    async def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; stats {service.stats}"
            await asyncio.sleep(0.05)

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with LifecycleServer(service.status, port=0) as server:
            url = server.url
            seen["before"] = [await aget(url + "/healthz"), await aget(url + "/readyz")]
            task = asyncio.create_task(service.run())
            try:
                await until(
                    lambda: service.stats.consumed == n + 1 and service.stats.dead_lettered == 1, "records fetched"
                )
                await asyncio.sleep(0.5)  # a commit tick or two: the watermarks are noted
                seen["gated"] = (await aget(url + "/readyz"), (await aget(url + "/metrics"))[1])
                gate.set()
                await until(lambda: service.stats.processed == n, "records handled")
                await asyncio.sleep(0.5)  # the final watermarks are committed and noted
                seen["done"] = (await aget(url + "/healthz"), (await aget(url + "/metrics"))[1])
            finally:
                service.stop()
                await asyncio.wait_for(task, 30)
            seen["after"] = await aget(url + "/readyz")
        return seen

    seen = asyncio.run(main())

    (h0, _), (r0, body0) = seen["before"]
    assert (h0, r0) == (200, 503) and json.loads(body0)["reason"] == "starting"
    (ready, ready_body), gated = seen["gated"]
    assert ready == 200 and json.loads(ready_body) == {"status": "ok", "reason": "consuming 3 partition(s)"}
    assert metric(gated, P + "records_in_flight", group=group) == keys  # one handler call per key lane
    assert metric(gated, P + "records_buffered", group=group) == n
    assert metric(gated, P + "assigned_partitions", group=group) == 3
    assert metric(gated, P + "lag", group=group, topic=src) >= n  # nothing handled yet: all behind
    assert metric(gated, P + "paused", group=group) == 0
    (alive, _), done = seen["done"]
    assert alive == 200
    assert metric(done, P + "records_consumed_total", group=group, topic=src) == n + 1
    assert metric(done, P + "records_processed_total", group=group, topic=src) == n
    assert metric(done, P + "records_produced_total", group=group, topic=out) == n
    assert metric(done, P + "dead_lettered_total", group=group, topic=src) == 1
    assert metric(done, P + "handler_failures_total", group=group, kind="poison") == 1
    assert metric(done, P + "handler_failures_total", group=group, kind="retryable") == n // keys
    assert metric(done, P + "retries_total", group=group, topic=src) == n // keys
    assert metric(done, P + "processing_seconds_count", group=group, topic=src) == n + 1
    assert metric(done, P + "commit_seconds_count", group=group, reason="periodic") >= 1
    assert sorted(samples(done, P + "lag", group=group, topic=src)) == [0, 0, 0]
    assert metric(done, P + "records_in_flight", group=group) == 0
    assert seen["after"][0] == 503

    outputs = read_topic(kafka_settings.bootstrap, out, expect=n)
    for m in outputs:  # every result names the event it answers
        assert headers_of(m)["crmpilot.source.event_id"] == json.loads(value_of(m))["id"].encode()


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SERVICE), *args],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_every_service_run_through_run_service_serves_the_endpoints_on_its_port(
    kafka_settings: KafkaSettings, unique_topic: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    src = unique_topic("svc-in", partitions=2, with_dlq=True)
    out = unique_topic("svc-out", partitions=2)
    group = unique_name("group")
    port = free_port()
    env = {
        "CRMPILOT_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "CRMPILOT_ECHO_SOURCE": src,
        "CRMPILOT_ECHO_OUTPUT": out,
        "CRMPILOT_ECHO_GROUP": group,
        "CRMPILOT_ECHO_HTTP_PORT": str(port),
    }
    log = tmp_path / "service.log"
    service = _start(env, log)
    try:
        help_text = subprocess.run(
            [sys.executable, str(SERVICE), "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert "CRMPILOT_ECHO_HTTP_PORT" in help_text and "CRMPILOT_ECHO_HTTP_HOST" in help_text
        deadline = time.monotonic() + 30
        while True:
            assert service.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "never ready: " + log.read_text()[-3000:]
            try:
                if http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:  # not listening yet
                pass
            time.sleep(0.1)
        produce_envelopes(kafka_settings.bootstrap, src, (case_event(i, f"k{i}") for i in range(20)))
        while metric(http_get(f"http://127.0.0.1:{port}/metrics")[1], P + "records_produced_total", group=group) < 20:
            assert time.monotonic() < deadline + 30, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0, log.read_text()[-3000:]

    with socket.socket() as taken:  # a port already in use stops the service loudly
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _start({**env, "CRMPILOT_ECHO_HTTP_PORT": str(taken.getsockname()[1])}, log)
        assert busy.wait(30) == 1
    assert "cannot serve /healthz, /readyz, /metrics" in log.read_text()
