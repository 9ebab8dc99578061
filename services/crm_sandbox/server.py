"""Serving the sandbox: TLS files, the PostgreSQL store, optional seed, uvicorn.

`SandboxServer.serve()` runs until `stop()` is called (from any thread) or,
when run from the main thread, until SIGINT/SIGTERM; uvicorn finishes the
requests in flight (waiting at most GRACEFUL_SHUTDOWN_S, since idle keep-alive
TLS clients never answer the close), then the store's connections are closed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import uvicorn

from .app import create_app
from .seed import seed_demo, seed_history
from .service import Org
from .settings import SandboxSettings
from .store import PostgresStore
from .tls import make_tls_files

__all__ = ["SandboxServer", "SeedName"]

SeedName = Literal["demo"]
GRACEFUL_SHUTDOWN_S = 5


class SandboxServer:
    """The sandbox on `settings.host:settings.port`, or on an already bound socket."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        seed: SeedName | None = None,
        history: int = 0,
        sock: socket.socket | None = None,
        log_level: str = "info",
        on_ready: Callable[[SandboxServer], None] | None = None,
    ) -> None:
        self.settings = settings
        self._seed = seed
        self._history = history
        self._sock = sock
        self._log_level = log_level
        self._on_ready = on_ready
        self._uvicorn: uvicorn.Server | None = None
        self._stop_requested = False
        self.ready = threading.Event()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1]) if self._sock else self.settings.port

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"https://{shown}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return (self.settings.cert_dir / "ca.pem").resolve()

    async def serve(self) -> None:
        tls = make_tls_files(self.settings.cert_dir, [self.settings.host])
        store = PostgresStore(self.settings.database_url.get_secret_value(), schema=self.settings.db_schema)
        async with store:
            if self._seed == "demo" or self._history:
                org = Org(store)
                await org.ensure_users()
                if self._seed == "demo":
                    await seed_demo(org)
                if self._history:
                    await seed_history(org, self._history)
            config = uvicorn.Config(
                create_app(store, self.settings),
                host=self.settings.host,
                port=self.settings.port,
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                log_level=self._log_level,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
            self._uvicorn = uvicorn.Server(config)
            self._uvicorn.should_exit = self._stop_requested
            announcer = asyncio.create_task(self._announce_when_started(self._uvicorn))
            try:
                await self._uvicorn.serve(sockets=[self._sock] if self._sock else None)
            finally:
                announcer.cancel()

    async def _announce_when_started(self, server: uvicorn.Server) -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn.Server has a plain `started` flag, no event to await
            await asyncio.sleep(0.02)
        self.ready.set()
        if self._on_ready is not None:
            self._on_ready(self)

    def stop(self) -> None:
        """Ask the server to shut down gracefully (safe from another thread)."""
        self._stop_requested = True
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
