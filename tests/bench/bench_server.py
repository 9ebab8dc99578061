"""The model endpoint of the benchmark: the OpenAI-protocol test server in a process of its own.

``python -m tests.bench.bench_server --latency 0.2`` prints its base URL on the
first line, serves until SIGTERM, then prints ``{"requests": …, "max_concurrent": …}``
(the peak number of requests it saw at once: the cap C held if it is <= C).
Its own process, so its CPU is not charged to a contender.
(The test server sets ``TCP_NODELAY``: without it every answer waited ~40 ms
for the client's delayed ACK, which would be measured as if consumers were slow.)
"""

from __future__ import annotations

import argparse
import json
import signal

from crmpilot.llm.testing import server as test_server
from tests.bench.workload import answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, required=True, help="seconds before each answer")
    args = ap.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # the server threads inherit the mask
    with test_server.OpenAITestServer(answer, latency=args.latency) as server:
        print(server.base_url, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        print(json.dumps({"requests": server.request_count, "max_concurrent": server.max_concurrent}), flush=True)


if __name__ == "__main__":
    main()
