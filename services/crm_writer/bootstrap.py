"""Composition root of crm_writer: settings in, a ready service out."""

from __future__ import annotations

import logging

from crmpilot.crm import CRM, AuditLog
from crmpilot.crm.connect import SalesforceSettings, salesforce_crm
from crmpilot.enrichments import Registry, SpecError, load_registry
from crmpilot.enrichments.orgcheck import Describe, org_describe, org_problems
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.warehouse import PostgresWarehouse

from .handler import CRMWriter
from .settings import Settings

log = logging.getLogger("crm_writer")


def check_org(registry: Registry, describe: Describe) -> None:
    """Raise :class:`SpecError` (file, line, reason) for objects, fields or picklist values the org lacks."""
    problems = [
        p for entry in registry.entries.values() if entry.spec.crm is not None for p in org_problems(entry, describe)
    ]
    if problems:
        raise SpecError(problems)


def bootstrap(
    settings: Settings,
    *,
    crm: CRM | None = None,
    audit: AuditLog | None = None,
    kafka: KafkaSettings | None = None,
    registry: Registry | None = None,
) -> ConsumerService:
    registry = load_registry() if registry is None else registry
    targets = {spec.name: spec for spec in registry if spec.crm is not None}
    if targets and crm is None:  # the org must hold what the specs write: else every batch's read would fail
        check_org(registry, org_describe(SalesforceSettings()))
    if audit is None:
        warehouse = PostgresWarehouse.connect(DatabaseSettings())
        warehouse.check()
        audit = warehouse
    handler = CRMWriter(
        crm or salesforce_crm(SalesforceSettings(), limit_retry_after_s=settings.limit_pause_s),
        audit,
        batch_size=settings.batch_size,
        batch_delay_s=settings.batch_delay_s,
        run_id=settings.run_id,
        limit_pause_s=settings.limit_pause_s,
        enrichments=targets,
    )
    log.info(
        "run %s: a result is retried for at least %.1f h of CRM outage, %.1f h of spent API budget, before the DLQ",
        settings.run_id,
        settings.retry_window_s() / 3600,
        settings.retry_window_s(settings.limit_pause_s) / 3600,
    )
    if targets:
        log.info(
            "declared enrichments written back: %s",
            ", ".join(f"{s.name} -> {s.crm.object}" for s in targets.values() if s.crm),
        )
    return ConsumerService(
        handler, settings.runtime(tuple(s.topic for s in targets.values())), kafka or KafkaSettings()
    )
