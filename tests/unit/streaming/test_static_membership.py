"""Static group membership: the instance ids the launchers give the services, and what the settings accept.

``infra/services.sh``, ``docker-compose.yml`` and the chaos suite run every consumer
service with ``CRMPILOT_<SERVICE>_GROUP_INSTANCE_ID=<service>-<replica>`` and a 30 s
session (issue 18): each id must be one Kafka accepts, unique per group, stable
across restarts, and must reach the consumer's ``group.instance.id``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from crmpilot.settings import KafkaSettings
from crmpilot.streaming import GroupMembershipSettings, RuntimeSettings

REPO = Path(__file__).resolve().parents[3]
CONSUMERS = ("ticket_classifier", "email_summarizer", "warehouse_writer", "crm_writer")
"""The consumer services with settings of their own; each enrichment (the built-in score_request too) runs on the
enricher."""


def _services_sh(function: str, service: str, **env: str) -> dict[str, str]:
    """``function`` of infra/services.sh and the ones after it up to ``membership_env``, run on their own (the
    script's body needs the stack): the NAME=VALUE lines it prints."""
    script = (REPO / "infra" / "services.sh").read_text()
    start = script.index(f"{function}() {{")
    end = script.index("\n}\n", script.index("membership_env() {")) + 3
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMPILOT_")}
    proc = subprocess.run(
        ["bash", "-c", f'set -euo pipefail\n{script[start:end]}\n{function} "$1"', "bash", service],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(line.split("=", 1) for line in proc.stdout.splitlines())


def _services_sh_membership(service: str, **env: str) -> dict[str, str]:
    return _services_sh("membership_env", service, **env)


@pytest.mark.parametrize("value", ["ticket_classifier-1", "enricher-ticket_type-2", "crm-writer-0.pod.ns", "a" * 249])
def test_valid_instance_ids_reach_group_instance_id(value: str) -> None:
    s = RuntimeSettings(group_id="g", topics=("a",), group_instance_id=value)
    assert s.consumer_config(KafkaSettings(bootstrap="b:1"))["group.instance.id"] == value
    assert GroupMembershipSettings(group_instance_id=value).group_instance_id == value


@pytest.mark.parametrize("value", ["", ".", "..", "enricher@ticket_type-1", "has space", "tab\t", "é-1", "a" * 250])
def test_ids_the_broker_would_refuse_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="group_instance_id"):
        RuntimeSettings(group_id="g", topics=("a",), group_instance_id=value)
    with pytest.raises(ValidationError, match="group_instance_id"):
        GroupMembershipSettings(group_instance_id=value)


def test_dynamic_membership_stays_the_library_default() -> None:
    c = RuntimeSettings(group_id="g", topics=("a",)).consumer_config(KafkaSettings(bootstrap="b:1"))
    assert "group.instance.id" not in c and c["session.timeout.ms"] == 45_000
    assert c["partition.assignment.strategy"] == "cooperative-sticky"


@pytest.mark.parametrize("service", CONSUMERS)
def test_services_sh_gives_each_consumer_service_its_own_stable_id(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"CRMPILOT_{service.upper()}_"
    env = _services_sh_membership(service)
    assert env == {prefix + "GROUP_INSTANCE_ID": f"{service}-1", prefix + "SESSION_TIMEOUT_MS": "30000"}
    assert _services_sh_membership(service) == env  # the same after a restart
    assert (
        _services_sh_membership(service, CRMPILOT_SERVICES_REPLICA="2")[prefix + "GROUP_INSTANCE_ID"] == f"{service}-2"
    )
    # a value already in the environment wins
    kept = _services_sh_membership(
        service, **{prefix + "GROUP_INSTANCE_ID": "pod-7", prefix + "SESSION_TIMEOUT_MS": "20000"}
    )
    assert kept == {prefix + "GROUP_INSTANCE_ID": "pod-7", prefix + "SESSION_TIMEOUT_MS": "20000"}
    # and the service reads it
    module = __import__(f"{service}.settings", fromlist=["Settings"])
    for key in [k for k in os.environ if k.startswith(prefix)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runtime = module.Settings().runtime()
    assert (runtime.group_instance_id, runtime.session_timeout_ms) == (f"{service}-1", 30_000)


def test_services_sh_gives_each_enricher_its_own_id() -> None:
    a = _services_sh_membership("enricher@ticket_type")
    b = _services_sh_membership("enricher@churn_risk")
    scorer = _services_sh_membership("enricher@score_request")  # the built-in request score
    assert a["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == "enricher-ticket_type-1"
    assert b["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == "enricher-churn_risk-1"
    assert scorer["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == "enricher-score_request-1"
    for env in (a, b, scorer):
        GroupMembershipSettings(group_instance_id=env["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"])
        assert env["CRMPILOT_ENRICHER_SESSION_TIMEOUT_MS"] == "30000"


@pytest.mark.parametrize("service", ["kpi_aggregator", "crm_source", "crm_sandbox"])
def test_services_sh_sets_nothing_for_services_without_a_consumer_group_setting(service: str) -> None:
    assert _services_sh_membership(service) == {}


def test_compose_gives_each_consumer_service_an_id_of_its_own() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    ids = {}
    for name, spec in compose["services"].items():
        if name not in CONSUMERS:
            continue
        env = spec["environment"]
        prefix = f"CRMPILOT_{name.upper()}_"
        assert env["CRMPILOT_KAFKA_BOOTSTRAP"]  # the shared environment is still merged in
        assert env[prefix + "GROUP_INSTANCE_ID"] == f"${{{prefix}GROUP_INSTANCE_ID:-{name}-1}}"
        assert env[prefix + "SESSION_TIMEOUT_MS"] == f"${{{prefix}SESSION_TIMEOUT_MS:-30000}}"
        ids[name] = f"{name}-1"
        assert "deploy" not in spec or "replicas" not in spec["deploy"]  # copies would share the id
    assert set(ids) == {"ticket_classifier", "warehouse_writer", "crm_writer"}


def test_compose_runs_the_built_in_request_score_as_a_static_enricher() -> None:
    scorer = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["enricher-score_request"]
    assert scorer["command"] == ["python", "-m", "enricher", "--enrichment", "score_request"]
    env = scorer["environment"]
    assert env["CRMPILOT_KAFKA_BOOTSTRAP"]  # the shared environment is merged in
    assert env["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == (
        "${CRMPILOT_ENRICHER_GROUP_INSTANCE_ID:-enricher-score_request-1}"
    )
    assert env["CRMPILOT_ENRICHER_SESSION_TIMEOUT_MS"] == "${CRMPILOT_ENRICHER_SESSION_TIMEOUT_MS:-30000}"
    GroupMembershipSettings(group_instance_id="enricher-score_request-1")


def test_the_chaos_suite_runs_static_members_whose_id_survives_a_restart() -> None:
    sys.path.insert(0, str(REPO / "tests" / "chaos"))
    try:
        from chaos_stack import STATIC_SESSION_TIMEOUT_MS, membership_env
    finally:
        sys.path.remove(str(REPO / "tests" / "chaos"))
    assert STATIC_SESSION_TIMEOUT_MS == 30_000
    for service in CONSUMERS:
        env = membership_env(service)
        assert env == membership_env(service)
        assert env[f"CRMPILOT_{service.upper()}_GROUP_INSTANCE_ID"] == f"{service}-1"
        assert membership_env(service, 3)[f"CRMPILOT_{service.upper()}_GROUP_INSTANCE_ID"] == f"{service}-3"
        GroupMembershipSettings(group_instance_id=env[f"CRMPILOT_{service.upper()}_GROUP_INSTANCE_ID"])


def _services_sh_instance(service: str, **env: str) -> dict[str, str]:
    return _services_sh("instance_env", service, **env)


def test_an_enricher_gets_the_health_port_named_after_its_enrichment() -> None:
    ports = {"CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT": "9403"}
    scorer = _services_sh_instance("enricher@score_request", **ports)
    assert scorer["CRMPILOT_ENRICHER_HTTP_PORT"] == "9403"
    assert scorer["CRMPILOT_ENRICHER_GROUP_INSTANCE_ID"] == "enricher-score_request-1"
    assert "CRMPILOT_ENRICHER_HTTP_PORT" not in _services_sh_instance("enricher@churn_risk", **ports), (
        "no port of its own set: none served (two enrichers on one port would clash)"
    )
    script = (REPO / "infra" / "services.sh").read_text()
    assert 'CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT="${CRMPILOT_ENRICHER_SCORE_REQUEST_HTTP_PORT:-9403}"' in script
