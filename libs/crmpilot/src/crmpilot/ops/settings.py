"""Settings of the operator tools, from ``CRMPILOT_OPS_*`` variables (command-line options override them)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["OpsSettings"]


class OpsSettings(BaseSettings):
    """``CRMPILOT_OPS_*``: which groups are crmpilot's, where services answer, how replays behave."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_OPS_", frozen=True, extra="ignore")

    group_prefix: str = Field(
        default="crmpilot", description="consumer groups whose name starts with this are crmpilot's"
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description='service name -> base URL of its health server, as JSON, e.g. {"ticket_classifier": "http://127.0.0.1:9101"}',
    )
    replay_group: str = Field(
        default="crmpilot-dlq-replay", description="consumer group remembering replayed dead letters"
    )
    max_replays: int = Field(
        default=3, ge=1, description="a dead letter replayed this many times is not replayed again"
    )
    dlq_suffix: str = Field(default=".dlq", min_length=1, description="dead-letter topics end with this")
    timeout_s: float = Field(default=15.0, gt=0, description="seconds to wait for Kafka, PostgreSQL or a service")
