"""Kill -9 mid-stream, restart: every input still gets an output (duplicates allowed, counted)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from streamkit import case_event, committed_and_end, produce_envelopes

from crmpilot.settings import KafkaSettings
from tests.kafkakit import value_of

pytestmark = pytest.mark.integration

SERVICE = Path(__file__).with_name("echo_service.py")


class _Outputs:
    """Follows the output topic from the beginning and counts event ids."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.ids: Counter[str] = Counter()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])

    def poll_until(self, done: Callable[[], bool], timeout: float, service: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert service.poll() is None, f"service exited with {service.returncode}"
            assert time.monotonic() < deadline, f"timed out with {len(self.ids)} distinct outputs"
            for m in self._consumer.consume(500, 0.1):
                assert m.error() is None, m.error()
                self.ids[json.loads(value_of(m))["id"]] += 1

    def close(self) -> None:
        self._consumer.close()


def _start(bootstrap: str, src: str, out: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SERVICE), bootstrap, src, out, group],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_sigkill_mid_stream_then_restart_loses_nothing(
    kafka_settings: KafkaSettings,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    bootstrap = kafka_settings.bootstrap
    src = unique_topic("crash-in", partitions=3, with_dlq=True)
    out = unique_topic("crash-out", partitions=3)
    group = unique_name("group")
    n = 1000
    produce_envelopes(bootstrap, src, (case_event(i, f"case-{i % 50}") for i in range(n)))
    outputs = _Outputs(bootstrap, out, 3)
    log = tmp_path / "service.log"
    try:
        first = _start(bootstrap, src, out, group, log)
        try:
            outputs.poll_until(lambda: len(outputs.ids) >= n // 3, 30, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        committed_at_kill = sum(c for c, _ in committed_and_end(bootstrap, src, group).values() if c >= 0)
        assert committed_at_kill < n, "the kill should have happened mid-stream"

        second = _start(bootstrap, src, out, group, log)
        try:
            outputs.poll_until(lambda: len(outputs.ids) == n, 45, second)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log.read_text()[-3000:]
    finally:
        outputs.close()

    assert set(outputs.ids) == {f"evt-{i}" for i in range(n)}  # nothing lost
    duplicates = sum(outputs.ids.values()) - n
    offsets = committed_and_end(bootstrap, src, group)
    assert all(c == end for c, end in offsets.values()), offsets
    print(
        f"\ncrash safety: {n} inputs, committed {committed_at_kill} before SIGKILL, "
        f"{duplicates} duplicate output(s) after restart"
    )
