"""Composition root of crm_source: settings in, a ready polling service out."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from crmpilot.crm.changes import SOURCE_OBJECTS, SourceObject, record_sources
from crmpilot.crm.connect import SalesforceSettings, salesforce_crm
from crmpilot.crm.feedback import FeedbackLog, multi_select_fields, watched_fields
from crmpilot.crm.port import ChangeFeed
from crmpilot.crm.watermark import PostgresWatermarkStore, WatermarkStore
from crmpilot.enrichments import Registry, load_registry
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import EventProducer
from crmpilot.warehouse import PostgresWarehouse

from .handler import CRMSource, EventSink
from .loop import PollingService
from .settings import Settings

log = logging.getLogger("crm_source")


def polled_objects(settings: Settings, registry: Registry | None = None) -> list[SourceObject]:
    """The built-in objects of ``settings.objects``, then (with ``enrichment_objects``) the declared ones of the
    registry (default: the built-in specs and ``CRMPILOT_ENRICHMENTS_DIR``).

    A built-in object also reads the fields enrichments write on it (the built-in score_request's on the Lead
    included; not diffed: they yield no event), so a person's override of one is seen as feedback, whether declared
    objects are polled or not.
    """
    registry = load_registry() if registry is None else registry
    watched = watched_fields(registry)
    objects = []
    for name in settings.objects:
        obj = SOURCE_OBJECTS[name]
        known = {f.lower() for f in obj.fields}
        extra = [f for pair in watched.get(name, ()) for f in pair if f.lower() not in known]
        objects.append(replace(obj, fields=(*obj.fields, *dict.fromkeys(extra))) if extra else obj)
    if not settings.enrichment_objects:
        return objects
    plan = record_sources(registry)
    for name, reason in plan.skipped:
        log.warning("enrichment %s: its object is not polled: %s", name, reason)
    for obj in plan.objects:
        log.info(
            "declared object %s polled for %s: crm.record.* to %s",
            obj.sobject,
            ", ".join(obj.enrichments),
            ", ".join(obj.topics),
            extra={"fields": {"sobject": obj.sobject, "fields": list(obj.fields)}},
        )
    return [*objects, *plan.objects]


def bootstrap(
    settings: Settings,
    *,
    crm: ChangeFeed | None = None,
    store: WatermarkStore | None = None,
    warehouse: FeedbackLog | None = None,
    sink: EventSink | None = None,
    kafka: KafkaSettings | None = None,
    registry: Registry | None = None,
) -> PollingService:
    """Adapters not given are built from the environment and closed when the service stops."""
    if registry is None:
        registry = load_registry()  # the fields enrichments write: a person's override of one is feedback
    objects = polled_objects(settings, registry)
    closers = []
    if warehouse is None:
        db = PostgresWarehouse.connect(DatabaseSettings())
        db.check()
        closers.append(db.close)
        warehouse = db
    if store is None:
        pg_store = PostgresWatermarkStore.connect(DatabaseSettings())
        closers.append(pg_store.close)
        store = pg_store
    producer: EventProducer | None = None
    if sink is None:
        producer = EventProducer(kafka or KafkaSettings(), client_id="crm-source")
        sink = producer
    source = CRMSource(
        crm=crm or salesforce_crm(SalesforceSettings()),
        store=store,
        feedback=warehouse,
        sink=sink,
        topics={"case": settings.case_topic, "email": settings.email_topic, "lead": settings.lead_topic},
        objects=objects,
        source=settings.source,
        overlap=timedelta(seconds=settings.overlap_s),
        initial_lookback=timedelta(seconds=settings.initial_lookback_s),
        page_size=settings.batch,
        watched=watched_fields(registry),
        multi_select=multi_select_fields(registry),
    )

    async def close() -> None:
        if producer is not None:
            await producer.aclose()
        for closer in closers:
            closer()

    return PollingService(
        source, interval_s=settings.poll_interval_s, max_backoff_s=settings.max_backoff_s, close=close
    )
