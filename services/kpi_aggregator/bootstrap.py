"""Composition root of kpi_aggregator: settings in, a faust app ready to run out.

Here, not at import, the broker is asked how many partitions the input topics
have (the internal topics get as many, unless set), and the warehouse is
checked to be migrated.
"""

from __future__ import annotations

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from crmpilot.enrichments import load_registry
from crmpilot.errors import Fatal
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import MissingTopics
from crmpilot.warehouse import connect, require_current
from crmpilot.warehouse.kpi import KpiStore, PostgresKpiStore

from .app import build_app
from .observation import enrichment_dimensions
from .settings import Settings

__all__ = ["UnsupportedKafkaSecurity", "bootstrap", "input_partitions"]


class UnsupportedKafkaSecurity(Fatal):
    """kpi_aggregator's faust client is configured for plaintext Kafka only."""


def input_partitions(kafka: KafkaSettings, topics: tuple[str, ...], *, timeout: float = 10.0) -> int:
    """The most partitions any of ``topics`` has; raises :class:`MissingTopics` if one is absent."""
    admin = AdminClient({**kafka.librdkafka(), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise Fatal(f"cannot read topic metadata from {kafka.bootstrap}: {exc.args[0].str()}") from exc
    missing = [t for t in topics if t not in metadata or metadata[t].error is not None]
    if missing:
        raise MissingTopics(missing)
    return max(len(metadata[t].partitions) for t in topics)


def bootstrap(
    settings: Settings,
    *,
    store: KpiStore | None = None,
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
) -> faust.App:
    kafka = kafka or KafkaSettings()
    if kafka.security_protocol.upper() != "PLAINTEXT":
        raise UnsupportedKafkaSecurity(
            f"CRMPILOT_KAFKA_SECURITY_PROTOCOL={kafka.security_protocol} is not supported by kpi_aggregator "
            "yet; use PLAINTEXT"
        )
    registry = load_registry()
    topics = (
        settings.topics
        if "topics" in settings.model_fields_set
        else tuple(dict.fromkeys((*settings.topics, *registry.output_topics)))
    )
    partitions = settings.partitions or input_partitions(kafka, topics)
    if store is None:
        database = database or DatabaseSettings()
        with connect(database) as conn:
            require_current(conn)
        store = PostgresKpiStore.connect(database)
    broker = ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap.split(","))
    return build_app(
        settings,
        broker=broker,
        partitions=partitions,
        store=store,
        client_id=f"{kafka.client_id_prefix}-kpi-aggregator",
        topics=topics,
        dimensions=enrichment_dimensions(registry),
    )
