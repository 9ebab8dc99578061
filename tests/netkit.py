"""Network helpers of the tests and the fault suite (``from tests.netkit import free_port, KafkaProxy``).

- :func:`free_port`: a free TCP port on the loopback interface, for the servers a
  test or a fault run starts itself.
- :class:`KafkaProxy`: a fault-injecting TCP proxy between Kafka clients and one
  broker, on 127.0.0.1 only, for network partitions (``cut`` / ``heal``).

The proxy listens on its own loopback port and forwards every connection to the
broker. A Kafka client bootstraps once and then connects to the addresses the
broker advertises in its Metadata, FindCoordinator and DescribeCluster answers,
which would bypass a plain proxy; so the proxy reads the protocol's framing (a
4-byte size before each request and response), notes each request's API key by
correlation id, and in those three answers replaces the broker's port after its
host (``127.0.0.1`` + the 4-byte port, the same length) with its own. Every other
byte passes unchanged. Nothing else is parsed, so it works for any API version.

:meth:`KafkaProxy.cut` partitions the clients from the broker: from then on no
byte is forwarded in either direction, and new connections are accepted but not
connected through, as when packets are dropped on the way; the clients' own
timeouts (request timeouts, the consumer session) decide what they do.
:meth:`KafkaProxy.heal` resumes forwarding: bytes held meanwhile are delivered in
order, as TCP retransmission would after a partition heals. It only ever
connects to the broker address it was given (a loopback address).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from typing import Any

__all__ = ["KafkaProxy", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# answers that carry broker addresses: Metadata, FindCoordinator, DescribeCluster
_ADDRESS_APIS = frozenset({3, 10, 60})


class KafkaProxy:
    """A TCP proxy on ``127.0.0.1:<port>`` in front of the broker ``upstream`` (``host:port``, loopback only)."""

    def __init__(self, upstream: str, port: int | None = None) -> None:
        host, _, up_port = upstream.rpartition(":")
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError(f"the proxy forwards to a broker on this machine only, not {upstream!r}")
        self.upstream_host, self.upstream_port = host, int(up_port)
        self.port = port or free_port()
        self._needle = host.encode() + struct.pack(">i", self.upstream_port)
        self._replacement = host.encode() + struct.pack(">i", self.port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._open: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.cut_at: float | None = None
        self.cuts: list[tuple[float, float]] = []
        """(start, end) monotonic times of past cuts."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self.cut_at is not None

    # --- control (from any thread)

    def start(self) -> KafkaProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._open = asyncio.Event()
            self._open.set()
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"kafka-proxy-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Kafka proxy did not start")
        return self

    def cut(self) -> None:
        """Stop forwarding (both directions, every connection, new ones too) until :meth:`heal`."""
        self.cut_at = time.monotonic()
        self._run(self._set_open(False))

    def heal(self) -> None:
        """Forward again; what was held during the cut is delivered now."""
        self._run(self._set_open(True))
        if self.cut_at is not None:
            self.cuts.append((self.cut_at, time.monotonic()))
        self.cut_at = None

    def stop(self) -> None:
        if self._loop is None:
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set_open(self, value: bool) -> None:
        assert self._open is not None
        if value:
            self._open.set()
        else:
            self._open.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- forwarding (the proxy's loop)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        assert self._open is not None
        self.connections += 1
        self._writers.add(client_w)
        broker_w: asyncio.StreamWriter | None = None
        pumps: list[asyncio.Future[None]] = []
        try:
            await self._open.wait()  # during a cut the connection is accepted and goes nowhere
            broker_r, broker_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            self._writers.add(broker_w)
            pending: dict[int, int] = {}  # correlation id -> API key, of this connection's requests
            pumps = [
                asyncio.ensure_future(self._pump(client_r, broker_w, pending, request=True)),
                asyncio.ensure_future(self._pump(broker_r, client_w, pending, request=False)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass  # the broker refused, or the proxy is stopping: the connection ends quietly
        finally:
            for pump in pumps:
                pump.cancel()
            for w in (client_w, broker_w):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: dict[int, int], *, request: bool
    ) -> None:
        assert self._open is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while True:
                await self._open.wait()
                head = await reader.readexactly(4)
                (size,) = struct.unpack(">i", head)
                body = await reader.readexactly(size)
                if request and size >= 8:
                    api_key, _version, correlation = struct.unpack(">hhi", body[:8])
                    if api_key in _ADDRESS_APIS:
                        pending[correlation] = api_key
                elif not request and size >= 4:
                    (correlation,) = struct.unpack(">i", body[:4])
                    if pending.pop(correlation, None) is not None:
                        body = body.replace(self._needle, self._replacement)
                await self._open.wait()  # read just before a cut: held until the heal
                writer.write(head + body)
                await writer.drain()
