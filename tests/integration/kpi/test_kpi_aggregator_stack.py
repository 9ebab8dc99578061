"""kpi_aggregator as deployed (``python -m kpi_aggregator``) on the real broker and database.

Result events go to a fresh topic; the service's JSON endpoint and
``warehouse.kpi_window`` must both show the right windows within a bounded time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from crmpilot.events import Envelope, TicketClassification, encode
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import connect
from tests.kpikit import email, request, ticket
from tests.netkit import free_port

pytestmark = pytest.mark.integration

DEADLINE_S = 120  # faust joins its group and creates its topics first; generous on a loaded 2-core machine


def _until(what: str, check: Callable[[], Any], deadline: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"kpi_aggregator exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; service log:\n{log.read_text()[-4000:]}")


def _results(port: int, size: int) -> dict[str, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/kpi?window_size_s={size}", timeout=2) as response:
            body = json.load(response)
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {f"{w['task']}|{w['dimension']}": w for w in body["windows"]}


@pytest.fixture
def service(
    unique_topic: Callable[..., str], unique_name: Callable[[str], str], kafka_bootstrap: str, kafka_admin: AdminClient,
    kpi_database: DatabaseSettings, tmp_path: Path,
) -> Iterator[tuple[str, str, int, subprocess.Popen[bytes], Path]]:  # fmt: skip
    topic = unique_topic("kpi-results", partitions=3)
    app_id = unique_name("kpi").replace(".", "-")
    port = free_port()
    env = os.environ | {
        "CRMPILOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CRMPILOT_DATABASE_URL": kpi_database.url.get_secret_value(),
        "CRMPILOT_KPI_AGGREGATOR_APP_ID": app_id,
        "CRMPILOT_KPI_AGGREGATOR_TOPICS": json.dumps([topic]),
        "CRMPILOT_KPI_AGGREGATOR_WEB_PORT": str(port),
        "CRMPILOT_KPI_AGGREGATOR_FLUSH_INTERVAL_S": "0.5",
        "CRMPILOT_KPI_AGGREGATOR_DATA_DIR": str(tmp_path / "faust"),
    }
    log = tmp_path / "kpi_aggregator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kpi_aggregator"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield topic, app_id, port, proc, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        internal = [t for t in kafka_admin.list_topics(timeout=10).topics if t.startswith(app_id + "-")]
        for future in (kafka_admin.delete_topics(internal, operation_timeout=30) if internal else {}).values():
            future.result(timeout=30)


def _ticket(i: int, at: datetime) -> Envelope[TicketClassification]:
    return ticket(
        f"t{i}",
        category="Billing" if i < 12 else "Refund",
        review=("auto_apply", "suggest", "skip")[i % 3] if i < 15 else "auto_apply",
        latency_ms=10.0 * (i + 1),
        processed_at=at,
    )


def test_results_become_live_windows_and_warehouse_rows(
    service: tuple[str, str, int, subprocess.Popen[bytes], Path],
    kafka_bootstrap: str,
    kafka_admin: AdminClient,
    kpi_database: DatabaseSettings,
) -> None:
    topic, app_id, port, proc, log = service
    deadline = time.monotonic() + DEADLINE_S
    _until("the ready line", lambda: "listening on" in log.read_text(), deadline, proc, log)

    at = datetime.now(UTC).replace(microsecond=0)
    events: list[Envelope[Any]] = [_ticket(i, at) for i in range(20)] + [
        email("e1", processed_at=at),
        request("r1", processed_at=at),
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for event in events:
        producer.produce(topic, encode(event), key=event.subject.encode())
    producer.produce(topic, b"{not json", key=b"poison")  # skipped, not counted
    assert producer.flush(10) == 0

    minute = _until(
        "1-minute windows",
        lambda: (
            (r := _results(port, 60)) and r.get("classify_ticket|all", {}).get("results") == 20 and len(r) == 7 and r
        ),
        deadline,
        proc,
        log,
    )
    tickets = minute["classify_ticket|all"]
    # 20 tickets: of the first 15, 5 each auto/suggest/skip; the last 5 auto → 10 auto of 20
    assert (tickets["auto_applied"], tickets["suggested"], tickets["skipped"]) == (10, 5, 5)
    assert tickets["automation_rate"] == 0.5
    assert tickets["p95_latency_ms"] == pytest.approx(190, rel=0.01)  # latencies 10..200 ms: nearest rank 19
    assert tickets["cost_usd"] == pytest.approx(0.04)
    assert tickets["window_start"] == at.replace(second=0).isoformat()
    assert minute["classify_ticket|category=Billing"]["results"] == 12
    assert minute["classify_ticket|category=Refund"]["results"] == 8
    assert minute["summarize_email|urgency=high"]["automation_rate"] == 0.0
    assert minute["score_request|band=hot"]["skipped"] == 1
    topics = kafka_admin.list_topics(timeout=10).topics
    for suffix in ("-observations", "-kpi-60s-changelog", "-kpi-3600s-changelog"):  # as many partitions as the input
        partitions = topics[app_id + suffix].partitions  # topic, one replica on our single broker
        assert len(partitions) == 3 and all(len(p.replicas) == 1 for p in partitions.values()), suffix
    hour = _until("1-hour windows", lambda: _results(port, 3600), deadline, proc, log)
    assert hour["classify_ticket|all"]["results"] == 20
    assert hour["classify_ticket|all"]["window_start"] == at.replace(minute=0, second=0).isoformat()

    def rows() -> list[tuple[Any, ...]]:
        with connect(kpi_database) as conn:
            return conn.execute(
                "select window_size, task, dimension, results, auto_applied, suggested, skipped, cost_usd, "
                "p95_latency_ms"
                " from warehouse.kpi_window order by 1, 2, 3"
            ).fetchall()

    def settled() -> dict[tuple[int, str, str], list[Any]]:
        by_key = {(size, task, dim): rest for size, task, dim, *rest in rows()}
        done = len(by_key) == 14 and all(by_key[(size, "classify_ticket", "all")][0] == 20 for size in (60, 3600))
        return by_key if done else {}

    by_key = _until("the final windows in the warehouse", settled, deadline, proc, log)
    for size in (60, 3600):
        results, auto, suggest, skip, cost, p95 = by_key[(size, "classify_ticket", "all")]
        assert (results, auto, suggest, skip, cost) == (20, 10, 5, 5, Decimal("0.040"))
        assert p95 == pytest.approx(190, rel=0.01)
        assert by_key[(size, "classify_ticket", "category=Refund")][0] == 8
        assert by_key[(size, "score_request", "band=hot")][:4] == [1, 0, 0, 1]
    with connect(kpi_database) as conn:
        view = conn.execute(
            "select automation_rate, window_end - window_start from bi.kpi_window"
            " where window_size = 60 and task = 'classify_ticket' and dimension = 'all'"
        ).fetchone()
    assert view is not None and view[0] == Decimal("0.5000") and view[1].total_seconds() == 60
