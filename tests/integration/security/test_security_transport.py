"""Transport security settings reach the clients unchanged: Kafka SASL/SSL to librdkafka, PostgreSQL sslmode to libpq.

The mapping is checked as configuration (settings -> the librdkafka dict every
consumer, producer and admin client is built from; the libpq URL every
PostgreSQL client opens), and then against the real local stack, which
speaks neither TLS nor SASL: asking for them must fail in the TLS/SASL layer,
which proves the setting got through rather than being dropped. Secrets stay
masked in ``repr`` and in the settings a service logs at start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaException, Producer
from pydantic import SecretStr

from crmpilot.llm.cache.postgres import PostgresCache
from crmpilot.settings import DatabaseSettings, KafkaSettings
from crmpilot.streaming import RuntimeSettings
from crmpilot.warehouse import WarehouseUnavailable
from crmpilot.warehouse.connection import connect as warehouse_connect
from crmpilot.warehouse.connection import describe_url

SASL_SSL = {
    "CRMPILOT_KAFKA_BOOTSTRAP": "broker-1.example:9093,broker-2.example:9093",
    "CRMPILOT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "CRMPILOT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "CRMPILOT_KAFKA_SASL_USERNAME": "crmpilot-svc",
    "CRMPILOT_KAFKA_SASL_PASSWORD": "kafka-PLANTED-secret",
    "CRMPILOT_KAFKA_SSL_CA_LOCATION": "/etc/crmpilot/kafka-ca.pem",
    "CRMPILOT_KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/crmpilot/client.pem",
    "CRMPILOT_KAFKA_SSL_KEY_LOCATION": "/etc/crmpilot/client.key",
    "CRMPILOT_KAFKA_SSL_KEY_PASSWORD": "key-PLANTED-passphrase",
}
EXPECTED = {
    "bootstrap.servers": "broker-1.example:9093,broker-2.example:9093",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "crmpilot-svc",
    "sasl.password": "kafka-PLANTED-secret",
    "ssl.ca.location": "/etc/crmpilot/kafka-ca.pem",
    "ssl.certificate.location": "/etc/crmpilot/client.pem",
    "ssl.key.location": "/etc/crmpilot/client.key",
    "ssl.key.password": "key-PLANTED-passphrase",
}


# --- Kafka -----------------------------------------------------------------------------------


def test_sasl_ssl_settings_from_the_environment_reach_every_librdkafka_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in SASL_SSL.items():
        monkeypatch.setenv(key, value)
    kafka = KafkaSettings()
    assert EXPECTED.items() <= kafka.librdkafka().items()
    runtime = RuntimeSettings(group_id="g", topics=("t",))
    assert EXPECTED.items() <= runtime.consumer_config(kafka).items()
    assert EXPECTED.items() <= runtime.producer_config(kafka).items()


def test_kafka_secrets_are_masked_in_repr_and_in_the_logged_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in SASL_SSL.items():
        monkeypatch.setenv(key, value)
    kafka = KafkaSettings()
    shown = repr(kafka) + str(kafka) + json.dumps(kafka.model_dump(mode="json"))
    assert "kafka-PLANTED-secret" not in shown and "key-PLANTED-passphrase" not in shown
    assert isinstance(kafka.sasl_password, SecretStr)


def test_plaintext_is_the_default_and_adds_no_tls_or_sasl_keys() -> None:
    conf = KafkaSettings(bootstrap="127.0.0.1:9092").librdkafka()
    assert conf == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_librdkafka_accepts_the_mapped_keys(tmp_path: Path) -> None:
    """The keys are librdkafka's own: a client builds from them (a wrong name would raise at construction)."""
    ca = tmp_path / "ca.pem"
    ca.write_text(
        Path("/etc/ssl/certs/ca-certificates.crt").read_text()
        if Path("/etc/ssl/certs/ca-certificates.crt").exists()
        else ""
    )
    if not ca.read_text():
        pytest.skip("no system CA bundle to stand in for a private CA")
    kafka = KafkaSettings(
        bootstrap="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
        sasl_password=SecretStr("p"), ssl_ca_location=str(ca),
    )  # fmt: skip
    Producer({**kafka.librdkafka(), "log_level": 0}).flush(0)


def test_a_missing_ca_file_is_refused_by_librdkafka_at_construction(
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(
        bootstrap="127.0.0.1:1",
        security_protocol="SSL",
        ssl_ca_location=str(tmp_path / "missing.pem"),
    )
    with pytest.raises(KafkaException, match="ssl.ca.location|No such file"):
        Producer({**kafka.librdkafka(), "log_level": 0})


@pytest.mark.integration
def test_asking_the_plaintext_local_broker_for_tls_fails_in_the_tls_layer(
    kafka_bootstrap: str,
) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, security_protocol="SSL")
    errors: list[str] = []
    producer = Producer(
        {
            **kafka.librdkafka(),
            "error_cb": lambda err: errors.append(err.str()),
            "log_level": 0,
        }
    )
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors and any("SSL" in e for e in errors), errors


# --- PostgreSQL --------------------------------------------------------------------------------


def test_sslmode_and_root_cert_stay_in_the_url_every_client_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://crmpilot:db-PLANTED-pw@db.example:5432/crmpilot?sslmode=verify-full&sslrootcert=/etc/crmpilot/pg-ca.pem"
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", url)
    settings = DatabaseSettings()
    assert settings.url.get_secret_value() == url  # handed to psycopg/libpq as it is
    described = describe_url(settings)
    assert "db-PLANTED-pw" not in described and "db.example" in described
    assert "db-PLANTED-pw" not in repr(settings) + json.dumps(settings.model_dump(mode="json"))


@pytest.mark.integration
def test_sslmode_require_reaches_libpq_the_plaintext_local_server_refuses(
    database_url: str,
) -> None:
    """The local stack's PostgreSQL has no TLS: sslmode=require must fail, and with the SSL reason."""
    sep = "&" if "?" in database_url else "?"
    with pytest.raises(WarehouseUnavailable, match="SSL"):
        warehouse_connect(
            DatabaseSettings(url=SecretStr(database_url + sep + "sslmode=require")),
            timeout=3,
        )
    with warehouse_connect(
        DatabaseSettings(url=SecretStr(database_url + sep + "sslmode=disable")),
        timeout=3,
    ) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(
        psycopg.OperationalError, match="SSL"
    ):  # the sandbox's store and the LLM cache open the same URL
        psycopg.connect(database_url + sep + "sslmode=require", connect_timeout=3)


@pytest.mark.integration
def test_the_llm_cache_keeps_sslmode(database_url: str) -> None:
    sep = "&" if "?" in database_url else "?"
    cache = PostgresCache(database_url + sep + "sslmode=require")
    assert cache._conninfo is not None
    assert "sslmode=require" in cache._conninfo
