"""Composition root of crm_writer: settings in, a ready service out."""

from __future__ import annotations

from crmpilot.crm import CRM, AuditLog
from crmpilot.crm.connect import SalesforceSettings, connect, integration_user_id
from crmpilot.crm.salesforce import SalesforceCRM
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import ConsumerService
from crmpilot.warehouse import PostgresWarehouse

from .handler import CRMWriter
from .settings import Settings


def salesforce_crm(sf_settings: SalesforceSettings | None = None) -> SalesforceCRM:
    sf_settings = sf_settings or SalesforceSettings()
    first = connect(sf_settings)
    user = integration_user_id(first, sf_settings)
    return SalesforceCRM(lambda: connect(sf_settings), user_id=user)


def bootstrap(settings: Settings, *, crm: CRM | None = None, audit: AuditLog | None = None, kafka: KafkaSettings | None = None) -> ConsumerService:
    if audit is None:
        warehouse = PostgresWarehouse.connect(DatabaseSettings())
        warehouse.check()
        audit = warehouse
    handler = CRMWriter(crm or salesforce_crm(), audit, batch_size=settings.batch_size, batch_delay_s=settings.batch_delay_s)
    return ConsumerService(handler, settings.runtime(), kafka or KafkaSettings())
