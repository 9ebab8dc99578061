"""Settings of kpi_aggregator, from ``CRMPILOT_KPI_AGGREGATOR_*`` variables.

Kafka comes from ``CRMPILOT_KAFKA_*``, the database from ``CRMPILOT_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RESULT_TOPICS = ("ai.ticket.classified", "ai.email.summarized")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_KPI_AGGREGATOR_", frozen=True, extra="ignore")

    app_id: str = Field(
        default="crmpilot-kpi-aggregator",
        description="faust app id: the Kafka consumer group and the prefix of its internal topics",
    )
    topics: tuple[str, ...] = Field(
        default=RESULT_TOPICS,
        min_length=1,
        description="result topics to aggregate (the declared enrichments' are added unless this is set)",
    )
    partitions: int | None = Field(
        default=None, ge=1, description="partitions of the internal topics; unset: as many as the input topics have"
    )
    replication: int = Field(default=1, ge=1, description="replication factor of the internal topics (1 on one broker)")
    window_sizes_s: tuple[int, ...] = Field(
        default=(60, 3600), min_length=1, description="tumbling window sizes, seconds"
    )
    retain_windows: int = Field(default=24, ge=1, description="windows of each size kept, served and accepted")
    web_host: str = Field(default="127.0.0.1", description="address the KPI web server binds to")
    web_port: int = Field(default=6066, ge=1, le=65535, description="port of the KPI web server (GET /kpi)")
    flush_interval_s: float = Field(
        default=5.0, gt=0, description="how often changed windows are written to the warehouse"
    )
    data_dir: Path = Field(default=Path(".run/kpi_aggregator"), description="faust's data directory")
    log_level: str = "INFO"
