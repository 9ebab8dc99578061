"""Shared fixtures of the integration tier: the real broker and database of ``infra/stack.sh``.

- ``kafka_bootstrap``: the broker address (``CRMPILOT_KAFKA_BOOTSTRAP``, default
  127.0.0.1:9092); the test is skipped, saying how to start it, if no broker answers.
- ``kafka_settings``: :class:`crmpilot.settings.KafkaSettings` pointing there.
- ``unique_name``: ``unique_name("group")`` -> a name no other test run uses.
- ``unique_topic``: ``unique_topic("orders", partitions=3)`` creates a fresh topic
  (deleted after the test), waits until the broker's metadata shows it, and
  returns its name; ``with_dlq=True`` also creates ``<name>.dlq``.
- ``database_url``: ``CRMPILOT_DATABASE_URL`` (default: the local stack's); the
  test is skipped if PostgreSQL does not answer.
- ``sandbox``, ``sb``, ``sf``: the CRM sandbox, from ``sandbox_support.py``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from sandbox_support import sandbox, sb, sf  # noqa: F401 - the CRM sandbox's fixtures, for the tests of this tier

from crmpilot.settings import DatabaseSettings, KafkaSettings

_START_HINT = "start the local stack with `infra/stack.sh up`"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("CRMPILOT_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000, "log_level": 0})
    try:
        admin.list_topics(timeout=5)
    except KafkaException as exc:
        pytest.skip(f"no Kafka broker answers at {bootstrap} ({exc.args[0].str()}); {_START_HINT}")
    return bootstrap


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=kafka_bootstrap)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")

    def make(prefix: str) -> str:
        return f"test.{prefix}.{test}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def unique_topic(kafka_admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(prefix: str = "topic", *, partitions: int = 1, with_dlq: bool = False, dlq_suffix: str = ".dlq") -> str:
        name = unique_name(prefix)
        names = [name, name + dlq_suffix] if with_dlq else [name]
        futures = kafka_admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=-1) for n in names], operation_timeout=30
        )
        for future in futures.values():
            future.result(timeout=30)
        created.extend(names)
        deadline = time.monotonic() + 30
        while not set(names) <= set(kafka_admin.list_topics(timeout=10).topics):  # metadata lags creation
            assert time.monotonic() < deadline, f"created topics not visible: {names}"
            time.sleep(0.05)
        return name

    yield make
    if created:
        for future in kafka_admin.delete_topics(created, operation_timeout=30).values():
            try:
                future.result(timeout=30)
            except KafkaException as exc:  # a leftover test topic is harmless; say so
                print(f"could not delete test topic: {exc}")


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("CRMPILOT_DATABASE_URL") or DatabaseSettings().url.get_secret_value()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL does not answer at the configured CRMPILOT_DATABASE_URL ({exc}); {_START_HINT}")
    return url
