"""``crmpilot lag`` against the real broker agrees with Kafka's own ``kafka-consumer-groups --describe``.

Kafka's tool runs from the cached jars (``infra/kafka-cli.sh``); if Java or the
jars cannot be had, only that comparison is skipped, saying why.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
Row = tuple[str, int, str, str, str, str]  # topic, partition, current, end, lag, consumer id


def kafka_describe(bootstrap: str, group: str) -> list[Row]:
    """Rows of ``kafka-consumer-groups --describe --group`` (skips the test if the tool cannot run)."""
    try:
        proc = subprocess.run(
            [
                str(REPO / "infra" / "kafka-cli.sh"),
                "consumer-groups",
                "--bootstrap-server",
                bootstrap,
                "--describe",
                "--group",
                group,
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Kafka's consumer-groups tool could not run ({exc}); only the comparison with it is skipped")
    if proc.returncode == 127 or "[stack] ERROR" in proc.stderr:  # no java, or the jars could not be fetched
        pytest.skip(f"Kafka's tools (Java + cached jars) are not available: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    rows: list[Row] = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 9 and fields[0] == group:
            rows.append((fields[1], int(fields[2]), fields[3], fields[4], fields[5], fields[6]))
    return sorted(rows)


def crmpilot_lag(app: typer.Typer, group: str) -> list[Row]:
    result = CliRunner().invoke(app, ["lag", "--group", group, "--json"])
    assert result.exit_code == 0, result.output
    (described,) = json.loads(result.output)

    def dash(v: object) -> str:
        return "-" if v is None else str(v)

    return sorted(
        (p["topic"], p["partition"], dash(p["committed"]), str(p["end"]), dash(p["lag"]), dash(p["member_id"]))
        for p in described["partitions"]
    )


@pytest.fixture
def cli_env(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("CRMPILOT_KAFKA_PORT", kafka_bootstrap.rsplit(":", 1)[1])


def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, n in counts.items():
        for i in range(n):
            producer.produce(topic, f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture
def member(kafka_bootstrap: str) -> Iterator[Callable[[str, str, list[TopicPartition]], None]]:
    """A live group member polling in the background (so the group is Stable with an assignment).

    It commits ``offsets`` itself, from its polling thread, once assigned: a
    librdkafka consumer must not be called from two threads at once (a
    synchronous commit beside a poll in another thread can hang).
    """
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def join(group: str, topic: str, offsets: list[TopicPartition]) -> None:
        consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "latest", "client.id": "lag-test-member"})  # fmt: skip
        consumer.subscribe([topic])
        committed = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                consumer.poll(0.2)
                if consumer.assignment() and not committed.is_set():
                    consumer.commit(offsets=offsets, asynchronous=False)
                    committed.set()
            consumer.close()

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        threads.append(t)
        assert committed.wait(30), "the member got no assignment"

    yield join
    stop.set()
    for t in threads:
        t.join(30)


def test_empty_group_with_commits(
    ops_app: typer.Typer,
    cli_env: None,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
) -> None:
    topic, group = unique_topic("lag", partitions=3), unique_name("lag-group")
    _produce(kafka_bootstrap, topic, {0: 7, 1: 3, 2: 5})
    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 2, 5)], asynchronous=False)
    committer.close()
    ours = crmpilot_lag(ops_app, group)
    assert ours == [(topic, 0, "4", "7", "3", "-"), (topic, 2, "5", "5", "0", "-")]
    assert kafka_describe(kafka_bootstrap, group) == ours


def test_stable_group_with_a_member_and_partitions_not_yet_committed(
    ops_app: typer.Typer,
    cli_env: None,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    member: Callable[[str, str, list[TopicPartition]], None],
) -> None:
    topic, group = unique_topic("lag", partitions=3), unique_name("lag-group")
    _produce(kafka_bootstrap, topic, {0: 4, 1: 6, 2: 2})
    member(group, topic, [TopicPartition(topic, 1, 2)])
    deadline = time.monotonic() + 20
    while (ours := crmpilot_lag(ops_app, group)) and any(r[5] == "-" for r in ours) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [r[:5] for r in ours] == [(topic, 0, "-", "4", "-"), (topic, 1, "2", "6", "4"), (topic, 2, "-", "2", "-")]
    assert {r[5] for r in ours} != {"-"}
    assert kafka_describe(kafka_bootstrap, group) == ours
