"""kpi_aggregator counts each result once: redelivered results and a crash (SIGKILL) add nothing.

The AI services deliver results at least once: after a crash they produce a
result again (same result id, a new ``processed_at``); the aggregator itself
re-reads what it had not committed when it was killed. The windows (``GET /kpi``
and ``warehouse.kpi_window``) must count distinct results all the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from test_kpi_aggregator_stack import _results, _until

from crmpilot.events import Envelope, encode
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import connect
from tests.dbkit import throwaway_database
from tests.kpikit import ticket
from tests.netkit import free_port

pytestmark = pytest.mark.integration

DEADLINE_S = 180  # two faust start-ups on a loaded 2-core machine
PARTITIONS = 3


class Aggregator:
    """``python -m kpi_aggregator`` on one topic, started, killed and restarted under the same app id."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kpi_aggregator"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self.proc

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def own_database(database_url: str) -> Iterator[DatabaseSettings]:
    """A migrated database of this test's own (the stack test reads every row of the session's one)."""
    with throwaway_database(database_url, "crmpilot_test_kpi") as settings:
        yield settings


@pytest.fixture
def aggregator(
    unique_topic: Callable[..., str], unique_name: Callable[[str], str], kafka_bootstrap: str, kafka_admin: AdminClient,
    own_database: DatabaseSettings, tmp_path: Path,
) -> Iterator[tuple[str, str, int, Aggregator]]:  # fmt: skip
    topic = unique_topic("kpi-redelivery", partitions=PARTITIONS)
    app_id = unique_name("kpi").replace(".", "-")
    port = free_port()
    env = os.environ | {
        "CRMPILOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CRMPILOT_DATABASE_URL": own_database.url.get_secret_value(),
        "CRMPILOT_KPI_AGGREGATOR_APP_ID": app_id,
        "CRMPILOT_KPI_AGGREGATOR_TOPICS": json.dumps([topic]),
        "CRMPILOT_KPI_AGGREGATOR_WEB_PORT": str(port),
        "CRMPILOT_KPI_AGGREGATOR_FLUSH_INTERVAL_S": "0.5",
        "CRMPILOT_KPI_AGGREGATOR_DATA_DIR": str(tmp_path / "faust"),
    }
    agg = Aggregator(env, tmp_path / "kpi_aggregator.log")
    try:
        yield topic, app_id, port, agg
    finally:
        agg.stop()
        internal = [t for t in kafka_admin.list_topics(timeout=10).topics if t.startswith(app_id + "-")]
        for future in (kafka_admin.delete_topics(internal, operation_timeout=30) if internal else {}).values():
            future.result(timeout=30)


def _produce(bootstrap: str, topic: str, events: list[Envelope[Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(topic, encode(event), key=event.subject.encode())
    assert producer.flush(10) == 0


def _caught_up(bootstrap: str, app_id: str, topics: list[str]) -> bool:
    """Whether the aggregator's group committed every record of ``topics`` (its input and internal topic)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": app_id,
            "enable.auto.commit": False,
        }
    )
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        committed = consumer.committed(tps, timeout=10)
        for tp in committed:
            _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            if high and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def _warehouse_results(db: DatabaseSettings, size: int) -> int:
    """Results summed over every stored window of ``size`` seconds (the events may straddle a window boundary)."""
    with connect(db) as conn:
        row = conn.execute(
            "select coalesce(sum(results), 0) from warehouse.kpi_window"
            " where window_size = %s and task = 'classify_ticket' and dimension = 'all'",
            (size,),
        ).fetchone()
    return int(row[0]) if row else 0


def _live_results(port: int, size: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/kpi?window_size_s={size}", timeout=2) as response:
            body = json.load(response)
    except OSError:
        return -1
    return sum(w["results"] for w in body["windows"] if w["task"] == "classify_ticket" and w["dimension"] == "all")


def test_redelivered_results_and_a_crash_count_once(
    aggregator: tuple[str, str, int, Aggregator],
    kafka_bootstrap: str,
    own_database: DatabaseSettings,
) -> None:
    topic, app_id, port, agg = aggregator
    log = agg.log
    deadline = time.monotonic() + DEADLINE_S
    proc = agg.start()
    _until("the ready line", lambda: "listening on" in log.read_text(), deadline, proc, log)
    internal = f"{app_id}-observations"

    def settle(proc: subprocess.Popen[bytes], expected: int) -> None:
        """Wait until the windows show at least ``expected`` results and every record is processed and committed."""

        def done() -> bool:
            return _live_results(port, 60) >= expected and _caught_up(kafka_bootstrap, app_id, [topic, internal])

        _until(
            f"{expected} results counted and every record committed",
            done,
            deadline,
            proc,
            log,
        )
        time.sleep(1.5)  # three flush intervals; anything counted twice would show by now
        _until("every record committed", done, deadline, proc, log)

    at = datetime.now(UTC).replace(microsecond=0)
    first = [ticket(f"rd{i}", processed_at=at) for i in range(10)]
    again = [ticket(f"rd{i}", processed_at=at + timedelta(seconds=1)) for i in range(5)]  # re-produced after a crash
    _produce(kafka_bootstrap, topic, first + first + again)  # every result twice, five three times

    settle(proc, 10)
    for size in (60, 3600):
        assert _live_results(port, size) == 10, _results(port, size)
        assert _warehouse_results(own_database, size) == 10

    # a crash: new results are counted, then the aggregator is killed before (most likely) committing them
    more = [ticket(f"rd{i}", processed_at=at + timedelta(seconds=2)) for i in range(10, 20)]
    _produce(kafka_bootstrap, topic, more)
    _until(
        "the new results counted",
        lambda: _live_results(port, 60) == 20,
        deadline,
        proc,
        log,
    )
    agg.stop(signal.SIGKILL)

    proc = agg.start()
    settle(proc, 20)
    for size in (60, 3600):
        assert _live_results(port, size) == 20, _results(port, size)
        assert _warehouse_results(own_database, size) == 20
