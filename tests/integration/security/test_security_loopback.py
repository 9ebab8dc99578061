"""HTTP endpoints bind to 127.0.0.1 unless told otherwise: the CRM sandbox, the services' /healthz /readyz /metrics,
the KPI server.

The defaults are checked in the settings, then for real: the processes are
started with only a port configured, and the kernel's socket table
(``/proc/net/tcp`` and ``tcp6``) must show their listening socket on
127.0.0.1 and on no other address.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from crm_sandbox.settings import SandboxSettings
from crmpilot.service import EndpointSettings
from kpi_aggregator.settings import Settings as KpiSettings
from tests.netkit import free_port

REPO = Path(__file__).resolve().parents[3]
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def listening_addresses(port: int) -> list[str]:
    """Local addresses (hex, as the kernel writes them) of sockets listening on ``port``, IPv4 and IPv6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
        addresses = listening_addresses(port)
        if addresses:
            return addresses
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _clean_env() -> dict[str, str]:
    """The environment without any host override (the defaults are under test)."""
    return {k: v for k, v in os.environ.items() if not k.endswith(("_HOST", "_HTTP_HOST", "_WEB_HOST"))}


def test_the_defaults_are_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.endswith(("_HOST", "_HTTP_HOST", "_WEB_HOST")):
            monkeypatch.delenv(key)
    assert SandboxSettings().host == "127.0.0.1"
    assert EndpointSettings().http_host == "127.0.0.1"
    assert KpiSettings().web_host == "127.0.0.1"


@pytest.mark.integration
def test_the_crm_sandbox_listens_on_loopback_only(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **_clean_env(),
        "CRMPILOT_DATABASE_URL": database_url,
        "CRMPILOT_SANDBOX_PORT": str(port),
        "CRMPILOT_SANDBOX_CERT_DIR": str(tmp_path / "tls"),
        "CRMPILOT_SANDBOX_DB_SCHEMA": "crm_sandbox_bindtest",
    }
    log = tmp_path / "crm_sandbox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm_sandbox"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        addresses = _wait_listening(port, proc, log)
        assert addresses == [LOOPBACK_HEX], f"the sandbox listens on {addresses}"
    finally:
        _stop(proc)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("drop schema if exists crm_sandbox_bindtest cascade")


@pytest.mark.integration
def test_a_services_lifecycle_endpoints_listen_on_loopback_only(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic = unique_topic("bindtest", with_dlq=True)
    port = free_port()
    env = {
        **_clean_env(),
        "CRMPILOT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        # the built-in score_request enrichment, as infra/services.sh starts it (enricher@score_request)
        "CRMPILOT_ENRICHER_GROUP_ID": unique_name("bindtest"),
        "CRMPILOT_ENRICHER_INPUT_TOPICS": f'["{topic}"]',
        "CRMPILOT_ENRICHER_OUTPUT_TOPIC": topic,
        "CRMPILOT_ENRICHER_HTTP_PORT": str(port),
        # the model is never asked here: no event is sent
        "CRMPILOT_LLM_PROVIDER": "openai",
        "CRMPILOT_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "CRMPILOT_LLM_API_KEY": "test",
    }
    log = tmp_path / "enricher.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "enricher", "--enrichment", "score_request"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        addresses = _wait_listening(port, proc, log)
        assert addresses == [LOOPBACK_HEX], f"the lifecycle endpoints listen on {addresses}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        _stop(proc)
