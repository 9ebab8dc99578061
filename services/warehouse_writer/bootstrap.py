"""Composition root of warehouse_writer: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.enrichments import Registry, load_registry
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.warehouse import PostgresWarehouse, Warehouse

from .handler import WarehouseWriter
from .settings import Settings


def bootstrap(
    settings: Settings,
    *,
    warehouse: Warehouse | None = None,
    kafka: KafkaSettings | None = None,
    registry: Registry | None = None,
) -> ConsumerService:
    registry = load_registry() if registry is None else registry
    if warehouse is None:
        pg = PostgresWarehouse.connect(DatabaseSettings())
        pg.check()
        warehouse = pg
    handler = WarehouseWriter(warehouse, batch_size=settings.batch_size, batch_delay_s=settings.batch_delay_s)
    return ConsumerService(
        handler, settings.runtime((*registry.output_topics, *registry.source_topics)), kafka or KafkaSettings()
    )
