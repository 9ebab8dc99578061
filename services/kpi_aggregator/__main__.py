"""``python -m kpi_aggregator``: live KPIs over the AI result topics, on faust-streaming.

Reads ``ai.ticket.classified``, ``ai.email.summarized`` and every enrichment's
results (``ai.request.scored`` for the built-in ``score_request``); keeps tumbling
windows (1 minute, 1 hour) per task and per category / urgency / first enum output
(the request band): result counts, automation rate (auto_apply vs suggest vs skip), p95
latency and cost. Serves them as JSON at ``GET http://127.0.0.1:6066/kpi`` and
upserts them into ``warehouse.kpi_window``. faust's internal topics are named
after the app id. Settings: ``CRMPILOT_KPI_AGGREGATOR_*``, ``CRMPILOT_KAFKA_*``,
``CRMPILOT_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import faust
from pydantic import ValidationError

from crmpilot.errors import CrmpilotError
from crmpilot.logs import setup_logging
from crmpilot.service import settings_help
from crmpilot.telemetry.setup import setup_tracing

from .bootstrap import bootstrap
from .settings import Settings

log = logging.getLogger("kpi_aggregator")


class KpiWorker(faust.Worker):
    """faust's worker without its terminal spinner, logging a ready line (``consuming …``) when started."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        super().__init__(app, loglevel=settings.log_level, override_logging=False, quiet=True)
        self.spinner = None
        self.settings = settings

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        s = self.settings
        log.info("consuming %s; KPIs listening on http://%s:%d/kpi", ", ".join(s.topics), s.web_host, s.web_port)


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m kpi_aggregator",
        description=__doc__,
        epilog="settings (environment variables):\n" + settings_help(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args()
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"kpi_aggregator: invalid settings:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging("kpi_aggregator", settings.log_level)
    setup_tracing("kpi_aggregator")
    try:
        app = bootstrap(settings)
    except CrmpilotError as exc:
        log.critical("cannot start: %s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from None
    log.info("starting", extra={"fields": {"settings": settings.model_dump(mode="json")}})
    KpiWorker(app, settings).execute_from_commandline()


if __name__ == "__main__":
    main()
