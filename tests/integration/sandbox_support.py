"""The CRM sandbox in-process, for integration tests that drive it with simple-salesforce.

``sandbox`` (module scope) serves on a free 127.0.0.1 port with a fresh CA, in
its own database schema dropped afterwards; ``sb`` resets it before a test;
``sf`` is a simple-salesforce client logged in as the integration user.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from pydantic import SecretStr
from simple_salesforce.api import Salesforce

from crm_sandbox.client import sandbox_salesforce, sandbox_session
from crm_sandbox.server import SandboxServer
from crm_sandbox.settings import DEFAULT_DATABASE_URL, SandboxSettings
from crm_sandbox.store import PostgresStore

DATABASE_URL = os.environ.get("CRMPILOT_DATABASE_URL", DEFAULT_DATABASE_URL)
BATCH_SIZE = 5


@dataclass
class Sandbox:
    url: str
    ca: Path
    settings: SandboxSettings
    sessions: list[requests.Session] = field(default_factory=list)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        with sandbox_session(self.url, self.ca) as session:
            response = session.request(method, f"{self.url}/__sandbox/{path}", timeout=10, **kwargs)
            response.raise_for_status()
            return response.json()

    def client(self, token: str | None = None) -> Salesforce:
        sf = sandbox_salesforce(self.url, self.ca, token or self.settings.session_token.get_secret_value())
        self.sessions.append(sf.session)
        return sf

    def session(self) -> requests.Session:
        """A login-capable session, closed after the test (idle TLS connections slow the server's stop)."""
        session = sandbox_session(self.url, self.ca)
        self.sessions.append(session)
        return session

    def close_sessions(self) -> None:
        while self.sessions:
            self.sessions.pop().close()
        gc.collect()  # responses kept by caught exceptions' tracebacks hold connections too

    def changes(self) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = self.admin("GET", "changes", params={"after": 0})
        return changes


def _require_postgres() -> None:
    try:
        psycopg.connect(DATABASE_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at CRMPILOT_DATABASE_URL ({exc}); run infra/stack.sh up")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    _require_postgres()
    schema = f"crm_sandbox_test_{uuid.uuid4().hex[:10]}"
    settings = SandboxSettings(
        database_url=SecretStr(DATABASE_URL),
        db_schema=schema,
        cert_dir=tmp_path_factory.mktemp("sandbox-tls"),
        query_batch_size=BATCH_SIZE,
    )
    sock = socket.create_server(("127.0.0.1", 0))
    server = SandboxServer(settings, sock=sock, log_level="warning")
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.ready.wait(0.1):
            assert thread.is_alive(), "the sandbox exited while starting (see the captured log)"
            assert time.monotonic() < deadline, "the sandbox did not start within 30 s"
        yield Sandbox(server.url, server.ca_path, settings)
    finally:
        server.stop()
        thread.join(15)
        sock.close()
        asyncio.run(_drop_schema(schema))


async def _drop_schema(schema: str) -> None:
    async with PostgresStore(DATABASE_URL, schema=schema) as store:
        await store.drop()


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.admin("POST", "reset")
    yield sandbox
    sandbox.close_sessions()


@pytest.fixture
def sf(sb: Sandbox) -> Salesforce:
    return sb.client()
