"""Settings of the crm_sandbox service, from `CRMPILOT_SANDBOX_*` environment variables.

The database URL falls back to the stack-wide `CRMPILOT_DATABASE_URL`. Tokens
and passwords are dev-only defaults, kept as SecretStr so they are not logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "SandboxSettings"]

DEFAULT_DATABASE_URL = "postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMPILOT_SANDBOX_", frozen=True, validate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        validation_alias=AliasChoices("CRMPILOT_SANDBOX_DATABASE_URL", "CRMPILOT_DATABASE_URL"),
    )
    db_schema: str = Field(default="crm_sandbox", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    cert_dir: Path = Path(".run/sandbox-tls")
    session_token: SecretStr = SecretStr("sandbox-integration-token")
    """Bearer token of the integration user (what crmpilot's services use)."""
    human_session_token: SecretStr = SecretStr("sandbox-human-token")
    """Bearer token of a human agent, to simulate a person editing records."""
    client_id: str = "crmpilot-sandbox"
    client_secret: SecretStr = SecretStr("sandbox-secret")
    user_password: SecretStr = SecretStr("sandbox-password")
    """Password of every sandbox user for the OAuth password grant."""
    api_daily_limit: int = Field(default=15000, gt=0)
    query_batch_size: int = Field(default=2000, gt=0, le=2000)
