"""Measure that the client's limiter holds a process at its RPM and concurrency caps.

Runs ``--requests`` tasks at once through the real ``openai`` SDK against the
OpenAI-protocol test server (127.0.0.1, bounded in count and time) and prints
what the server saw: peak concurrent requests and the steady request rate
(second half of the run, long after the initial burst of ``burst_seconds`` of
quota), next to the configured limits; exits non-zero if a limit was exceeded
(5 % slack on the rate for timing jitter). ``make bench`` can call::

    python -m crmpilot.llm.testing.bench --requests 120 --rpm 1200 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from pydantic import BaseModel

from crmpilot.llm.base import Prompt, TaskSpec
from crmpilot.llm.client import LLMClient
from crmpilot.llm.limits import Limiter
from crmpilot.llm.openai_provider import OpenAIProvider
from crmpilot.llm.retry import RetryPolicy
from crmpilot.llm.testing.server import OpenAITestServer, Reply

__all__ = ["run_bench", "main"]


class _Echo(BaseModel):
    ok: bool


_SPEC = TaskSpec("bench_echo", Prompt("bench_echo", "1", "Answer with JSON.", "{text}"), _Echo)


async def run_bench(
    *, requests: int, rpm: int | None, concurrency: int, latency: float, burst_seconds: float
) -> dict[str, Any]:
    with OpenAITestServer(lambda req: Reply({"ok": True}, usage=(20, 3)), latency=latency) as srv:
        limiter = Limiter(max_concurrency=concurrency, rpm=rpm, burst_seconds=burst_seconds)
        client = LLMClient(
            OpenAIProvider(model="gpt-4o-mini", base_url=srv.base_url, api_key="sk-bench", timeout=30),
            limiter=limiter,
            retry=RetryPolicy(deadline=600),
            redact=False,
        )
        t0 = time.monotonic()
        await asyncio.gather(*(client.run(_SPEC, {"text": f"request {i}"}) for i in range(requests)))
        elapsed = time.monotonic() - t0
        await client.aclose()
        arrivals = sorted(r.received_at for r in srv.requests)
        burst = int(limiter.rpm.capacity) if limiter.rpm else 0
        # The steady state: the second half of the run, long after the initial
        # burst, when every request waits for the bucket to refill.
        steady = arrivals[len(arrivals) // 2 :]
        span = steady[-1] - steady[0] if len(steady) > 1 else 0.0
        steady_rpm = (len(steady) - 1) / span * 60 if span > 0 else None
        return {
            "requests": srv.request_count,
            "elapsed_s": round(elapsed, 3),
            "configured_concurrency": concurrency,
            "max_concurrent_seen_by_server": srv.max_concurrent,
            "configured_rpm": rpm,
            "burst": burst,
            "measured_rpm_steady": round(steady_rpm, 1) if steady_rpm else None,
            "overall_rpm": round(srv.request_count / elapsed * 60, 1),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--rpm", type=int, default=1200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--latency", type=float, default=0.02, help="server think time per request, seconds")
    ap.add_argument("--burst-seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 5000:
        ap.error("--requests must be within 1..5000")
    result = asyncio.run(
        run_bench(
            requests=args.requests,
            rpm=args.rpm or None,
            concurrency=args.concurrency,
            latency=args.latency,
            burst_seconds=args.burst_seconds,
        )
    )
    print(json.dumps(result, indent=2))
    ok = result["max_concurrent_seen_by_server"] <= args.concurrency and (
        not args.rpm or result["measured_rpm_steady"] is None or result["measured_rpm_steady"] <= args.rpm * 1.05
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
