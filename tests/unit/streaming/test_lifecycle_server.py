"""The lifecycle endpoints: probe status codes and bodies, Prometheus text, errors for anything else."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crmpilot.streaming import LifecycleServer, ServiceStatus
from crmpilot.telemetry import metrics


async def _request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()  # the server closes the connection after one answer
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_probes_follow_the_status_and_say_why() -> None:
    state = ServiceStatus(alive=True, ready=False, reason="no partitions assigned")

    async def main() -> list[tuple[int, dict[str, str], bytes]]:
        nonlocal state
        async with LifecycleServer(lambda: state, port=0) as server:
            answers = [
                await _request(server.port, f"GET {p} HTTP/1.1\r\n\r\n".encode()) for p in ("/healthz", "/readyz")
            ]
            state = ServiceStatus(alive=True, ready=True, reason="consuming 3 partition(s)")
            answers.append(await _request(server.port, b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n"))
            state = ServiceStatus(alive=False, ready=True, reason="consumer thread stuck")
            answers += [
                await _request(server.port, f"GET {p} HTTP/1.1\r\n\r\n".encode()) for p in ("/healthz", "/readyz")
            ]
            return answers

    (h1, hh, hb), (r1, _, rb), (r2, _, rb2), (h3, _, _), (r3, _, _) = asyncio.run(main())
    assert (h1, r1, r2, h3, r3) == (200, 503, 200, 503, 503)  # not alive is never ready
    assert hh["content-type"] == "application/json" and int(hh["content-length"]) == len(hb)
    assert json.loads(hb) == {"status": "ok", "reason": "no partitions assigned"}
    assert json.loads(rb) == {"status": "unavailable", "reason": "no partitions assigned"}
    assert json.loads(rb2)["reason"] == "consuming 3 partition(s)"


def test_metrics_renders_the_process_registry_in_prometheus_text() -> None:
    metrics.counter("crmpilot_test_lifecycle_things", "Things counted by the lifecycle test", ("kind",)).labels(
        "a"
    ).inc(3)

    async def main() -> tuple[int, dict[str, str], bytes]:
        async with LifecycleServer(lambda: ServiceStatus(True, True, "ok"), port=0) as server:
            return await _request(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")

    status, headers, body = asyncio.run(main())
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (sample,) = [s for s in families["crmpilot_test_lifecycle_things"].samples if s.name.endswith("_total")]
    assert sample.labels == {"kind": "a"} and sample.value >= 3
    assert "process_resident_memory_bytes" in families  # the process collector comes with the registry


def test_other_paths_methods_and_garbage_get_http_errors() -> None:
    async def main() -> list[tuple[int, dict[str, str], bytes]]:
        async with LifecycleServer(lambda: ServiceStatus(True, True, "ok"), port=0) as server:
            return [
                await _request(server.port, b"GET /nope HTTP/1.1\r\n\r\n"),
                await _request(server.port, b"POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                await _request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n"),
                await _request(server.port, b"nonsense\r\n\r\n"),
            ]

    (s404, _, _), (s405, _, _), (head, head_headers, head_body), (s400, _, _) = asyncio.run(main())
    assert (s404, s405, head, s400) == (404, 405, 200, 400)
    assert head_body == b"" and int(head_headers["content-length"]) > 0


def test_the_same_metric_name_gives_the_same_metric_and_a_clash_is_an_error() -> None:
    a = metrics.histogram("crmpilot_test_lifecycle_seconds", "A test histogram", ("group",))
    assert metrics.histogram("crmpilot_test_lifecycle_seconds", "A test histogram", ("group",)) is a
    with pytest.raises(ValueError, match="Histogram"):
        metrics.counter("crmpilot_test_lifecycle_seconds", "clash", ("group",))
