"""Every consumer service's ``--help`` lists its group-membership settings, read from its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from crmpilot.enrichments import load_registry

REPO = Path(__file__).resolve().parents[3]
SERVICES = {
    "ticket_classifier": "CRMPILOT_TICKET_CLASSIFIER_",
    "email_summarizer": "CRMPILOT_EMAIL_SUMMARIZER_",
    "enricher": "CRMPILOT_ENRICHER_",  # every enrichment's service, the built-in score_request's too
    "warehouse_writer": "CRMPILOT_WAREHOUSE_WRITER_",
    "crm_writer": "CRMPILOT_CRM_WRITER_",
}
MEMBERSHIP = (
    "SESSION_TIMEOUT_MS",
    "HEARTBEAT_INTERVAL_MS",
    "MAX_POLL_INTERVAL_MS",
    "GROUP_INSTANCE_ID",
    "LIVENESS_TIMEOUT_S",
)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_help_lists_the_group_membership_settings(service: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", service, "--help"],
        cwd=REPO / "services",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  CRMPILOT_")}
    prefix = SERVICES[service]
    for name in MEMBERSHIP:
        assert prefix + name in lines, f"{prefix + name} missing from --help:\n{proc.stdout}"
    assert "[default: 45000]" in lines[prefix + "SESSION_TIMEOUT_MS"]
    assert "static membership" in lines[prefix + "GROUP_INSTANCE_ID"]
    assert "[default: None]" in lines[prefix + "GROUP_INSTANCE_ID"]
    # the service's own settings come first, the shared ones after
    names = list(lines)
    assert names.index(prefix + "GROUP_ID") < names.index(prefix + "SESSION_TIMEOUT_MS")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_environment_reaches_the_runtime_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = __import__(f"{service}.settings", fromlist=["Settings"])
    prefix = SERVICES[service]
    for key in list(os.environ):
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    monkeypatch.setenv(prefix + "SESSION_TIMEOUT_MS", "10000")
    monkeypatch.setenv(prefix + "HEARTBEAT_INTERVAL_MS", "2000")
    monkeypatch.setenv(prefix + "MAX_POLL_INTERVAL_MS", "120000")
    monkeypatch.setenv(prefix + "GROUP_INSTANCE_ID", f"{service}-0")
    if service == "enricher":  # one service per spec: its runtime is the spec's
        monkeypatch.setenv(prefix + "ENRICHMENT", "score_request")
        runtime = module.Settings().runtime(load_registry([]).get("score_request"))
        assert runtime.group_id == "crmpilot-request-scorer", "the group of the service the spec replaced"
    else:
        runtime = module.Settings().runtime()
    assert (
        runtime.session_timeout_ms,
        runtime.heartbeat_interval_ms,
        runtime.max_poll_interval_ms,
    ) == (10_000, 2_000, 120_000)
    assert runtime.group_instance_id == f"{service}-0"
    assert runtime.member_timeout_s == 20.0
    monkeypatch.setenv(prefix + "HEARTBEAT_INTERVAL_MS", "10000")
    with pytest.raises(ValidationError):  # caught at start-up (exit 2), before anything connects
        module.Settings()
