"""Settings of crm_source, from ``CRMPILOT_CRM_SOURCE_*`` variables.

The CRM connection comes from ``CRMPILOT_SALESFORCE_*`` (see
``crmpilot.crm.connect.SalesforceSettings``), the watermark and the feedback
table from the warehouse (``CRMPILOT_DATABASE_URL``), Kafka from
``CRMPILOT_KAFKA_*``. Each poll costs one API call per object (more when a page
of changes is full): ``objects x 86,400 / poll_interval_s`` calls a day when
quiet, 8,640 with the defaults. The objects the enrichment specs of
``CRMPILOT_ENRICHMENTS_DIR`` read as ``crm.record.*`` events are polled too
(``enrichment_objects``), one more call per poll each.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmpilot.crm.changes import SOURCE_OBJECTS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_CRM_SOURCE_", frozen=True, extra="ignore")

    source: str = Field(
        default="crm://salesforce", description="CloudEvents source of the events; also names the stored watermark"
    )
    objects: tuple[str, ...] = Field(default=("Case", "EmailMessage", "Lead"), description="sObjects to poll")
    poll_interval_s: float = Field(default=30.0, gt=0, description="pause between polls")
    overlap_s: float = Field(
        default=120.0,
        ge=0,
        description="re-read this far behind the watermark (late commits); re-read records are dropped",
    )
    initial_lookback_s: float = Field(default=86_400.0, ge=0, description="first run: start this far back")
    batch: int = Field(
        default=2000, ge=200, le=2000, description="records per query page (Sforce-Query-Options batchSize)"
    )
    case_topic: str = Field(default="crm.case.events", description="crm.case.created / crm.case.updated")
    email_topic: str = Field(default="crm.email.events", description="crm.email.received")
    lead_topic: str = Field(default="crm.lead.events", description="erp.request.submitted (kind lead)")
    enrichment_objects: bool = Field(
        default=True,
        description="also poll each crm.object of the enrichment specs (CRMPILOT_ENRICHMENTS_DIR) that read "
        "crm.record.* "
        "events,"
        " producing crm.record.created / crm.record.updated to the spec's first source topic",
    )
    max_backoff_s: float = Field(
        default=300.0, gt=0, description="longest wait between polls while the CRM, Kafka or the database fails"
    )
    log_level: str = "INFO"

    @field_validator("objects")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [o for o in value if o not in SOURCE_OBJECTS]
        if unknown or not value:
            raise ValueError(f"objects must be among {', '.join(SOURCE_OBJECTS)}; got {', '.join(unknown) or 'none'}")
        return value
