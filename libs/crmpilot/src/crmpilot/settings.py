"""Connection settings shared by every service, read from ``CRMPILOT_*`` variables.

Defaults point at the local stack started by ``infra/stack.sh`` (Kafka on
127.0.0.1:9092, PostgreSQL on 127.0.0.1:55432). Secrets are ``SecretStr`` and are
never printed.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSettings", "DatabaseSettings"]


class KafkaSettings(BaseSettings):
    """``CRMPILOT_KAFKA_*``: where the brokers are and how to authenticate."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_KAFKA_", frozen=True, extra="ignore")

    bootstrap: str = Field(default="127.0.0.1:9092", description="bootstrap.servers")
    security_protocol: str = Field(default="PLAINTEXT", description="security.protocol")
    sasl_mechanism: str | None = Field(default=None, description="sasl.mechanism, e.g. PLAIN or SCRAM-SHA-512")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(
        default=None, description="ssl.ca.location: PEM file of the CA that signed the brokers' certificates"
    )
    ssl_certificate_location: str | None = Field(
        default=None, description="ssl.certificate.location: client certificate (mutual TLS)"
    )
    ssl_key_location: str | None = Field(default=None, description="ssl.key.location: client private key (mutual TLS)")
    ssl_key_password: SecretStr | None = Field(
        default=None, description="ssl.key.password: passphrase of the client key"
    )
    client_id_prefix: str = "crmpilot"

    def librdkafka(self) -> dict[str, str]:
        """The librdkafka configuration keys common to producers, consumers and admin."""
        conf = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        for key, value in (
            ("ssl.ca.location", self.ssl_ca_location),
            ("ssl.certificate.location", self.ssl_certificate_location),
            ("ssl.key.location", self.ssl_key_location),
        ):
            if value:
                conf[key] = value
        if self.ssl_key_password:
            conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return conf


class DatabaseSettings(BaseSettings):
    """``CRMPILOT_DATABASE_URL``: the PostgreSQL warehouse."""

    model_config = SettingsConfigDict(env_prefix="CRMPILOT_DATABASE_", frozen=True, extra="ignore")

    url: SecretStr = Field(
        default=SecretStr("postgresql://crmpilot:crmpilot@127.0.0.1:55432/crmpilot"),
        description="libpq connection URL (the password is a secret)",
    )
