"""What every contender process gets on its command line (the runner passes the same to each)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tests.bench.workload import Workload


def contender_args(description: str) -> argparse.Namespace:
    """Parse ``--bootstrap --src --out --group --base-url --concurrency --in-flight --measure-events --stats-file``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    ap.add_argument("--src", required=True, help="topic of case events")
    ap.add_argument("--out", required=True, help="topic for the results")
    ap.add_argument("--group", required=True, help="consumer group (faust: app id)")
    ap.add_argument("--base-url", required=True, help="the OpenAI-protocol endpoint")
    ap.add_argument("--concurrency", type=int, required=True, help="C: the LLM client's concurrency cap")
    ap.add_argument("--in-flight", type=int, required=True, help="events the contender works on at once")
    ap.add_argument(
        "--measure-events", type=int, required=True, help="write the endpoint's use after this many results"
    )
    ap.add_argument("--stats-file", type=Path, required=True, help="where")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return args


def workload(args: argparse.Namespace) -> Workload:
    return Workload(args.base_url, args.concurrency, measure_events=args.measure_events, stats_file=args.stats_file)
