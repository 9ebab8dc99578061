"""The model endpoint of the benchmark: the OpenAI-protocol test server in a process of its own.

``python -m tests.bench.bench_server --latency 0.2`` prints its base URL on the
first line, serves until SIGTERM, then prints ``{"requests": …, "max_concurrent": …}``
(the peak number of requests it saw at once: the cap C held if it is <= C).
Its own process, so its CPU is not charged to a contender.

It answers with ``TCP_NODELAY`` set: the test server writes the status line and
headers, then the body, in two sends; with Nagle's algorithm on, the second
waits for the client's delayed ACK, which adds about 40 ms to every request
(a 0 ms model answered in about 60 ms here instead of 6 ms) and would be
measured as if the consumers were slow.
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
    test_server._Handler.disable_nagle_algorithm = True  # see the module docstring
    with test_server.OpenAITestServer(answer, latency=args.latency) as server:
        print(server.base_url, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        print(json.dumps({"requests": server.request_count, "max_concurrent": server.max_concurrent}), flush=True)


if __name__ == "__main__":
    main()
