"""A service's lifecycle endpoints over HTTP: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``GET /healthz``: 200 while the process is alive and its event loop answers
  (the answer comes from that loop, so an answer is the proof), 503 when the
  service reports itself stuck: a consumer whose thread has not polled for
  too long, or that has been out of its consumer group for too long (see
  :mod:`crmpilot.streaming.liveness`).
- ``GET /readyz``: 200 when the service does its job (a consumer: partitions
  assigned and being polled), 503 otherwise (starting, no partitions, a
  rebalance holding the consumer, stopping).
- ``GET /metrics``: the process registry (:mod:`crmpilot.telemetry.metrics`)
  in Prometheus text format.

The probes answer a one-line JSON object ``{"status": "ok"|"unavailable", "reason": …}``.

A small HTTP/1.1 server on the service's own asyncio loop
(``asyncio.start_server``), rather than prometheus-client's threaded one:
the probes must run on the loop they vouch for, and they read state the loop
owns. GET and HEAD only, one request per connection, requests up to 16 KiB,
no TLS: bind it to 127.0.0.1 (the default) or to an address only the
orchestrator's probes and the Prometheus scraper reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from crmpilot.telemetry.metrics import exposition

__all__ = ["LifecycleServer", "ServiceStatus"]

_READ_TIMEOUT_S = 5.0
_MAX_REQUEST = 16 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What the probes answer: alive (``/healthz``), ready (``/readyz``) and why, in a few words."""

    alive: bool
    ready: bool
    reason: str


class LifecycleServer:
    """Serves the lifecycle endpoints of one process on ``host:port`` (port 0: any free port).

    ``status`` is called on the loop for every probe. Use ``async with`` or
    :meth:`start` / :meth:`aclose`.
    """

    def __init__(self, status: Callable[[], ServiceStatus], *, host: str = "127.0.0.1", port: int) -> None:
        self._status = status
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the address is taken."""
        self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=_MAX_REQUEST)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LifecycleServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3:
                status, ctype, body, method = 400, "text/plain", b"bad request\n", "GET"
            else:
                method, target = parts[0], parts[1]
                status, ctype, body = self._answer(method, target.split("?", 1)[0])
            writer.write(_response(status, ctype, b"" if method == "HEAD" else body, len(body)))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            body, ctype = exposition()
            return 200, ctype, body
        if path in ("/healthz", "/readyz"):
            state = self._status()
            ok = state.alive if path == "/healthz" else state.alive and state.ready
            payload = {"status": "ok" if ok else "unavailable", "reason": state.reason}
            return (200 if ok else 503), "application/json", json.dumps(payload).encode() + b"\n"
        return 404, "text/plain", b"not found: try /healthz, /readyz, /metrics\n"


def _response(status: int, content_type: str, body: bytes, length: int) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
