"""The producer loop: poll, wait, poll again, until SIGTERM; back off while a dependency fails.

crm_source is not a Kafka consumer, so it does not run on the consumer
runtime; this is its small equivalent. A transient failure (CRM down or out of
API budget, Kafka not acknowledging, database unreachable) is retried with
exponential backoff that honours ``retry_after``; any other crmpilot error
(bad credentials, missing fields or tables) stops the service with exit 1.
SIGTERM/SIGINT stop it between pages: the page in hand is finished and saved.
:meth:`PollingService.status` feeds ``/readyz``: ready once a poll succeeded,
not ready while polls fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from crmpilot.errors import CrmpilotError, Retryable
from crmpilot.streaming.lifecycle import ServiceStatus
from crmpilot.streaming.retry import backoff_delay

from .handler import CRMSource

log = logging.getLogger("crm_source")


class PollingService:
    def __init__(
        self,
        source: CRMSource,
        *,
        interval_s: float,
        max_backoff_s: float = 300.0,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        self._interval_s = interval_s
        self._max_backoff_s = max_backoff_s
        self._close = close
        self._stop = asyncio.Event()
        self._failing: str | None = "not polled yet"
        self.polls = 0

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> ServiceStatus:
        if self._stop.is_set():
            return ServiceStatus(alive=True, ready=False, reason="stopping")
        if self._failing is not None:
            return ServiceStatus(alive=True, ready=False, reason=self._failing)
        return ServiceStatus(alive=True, ready=True, reason=f"polling, {self.polls} poll(s) done")

    async def serve(self) -> int:
        """Poll until stopped; return the process exit code (0 stopped, 1 fatal)."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            return await self._run()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._close is not None:
                await self._close()

    async def _run(self) -> int:
        objects = ", ".join(o.sobject for o in self._source.objects)
        calls_a_day = round(len(self._source.objects) * 86_400 / self._interval_s)
        log.info(
            "polling %s every %gs",
            objects,
            self._interval_s,
            extra={"fields": {"source": self._source.source, "api_calls_per_day_when_quiet": calls_a_day}},
        )
        failures = 0
        while not self._stop.is_set():
            try:
                stats = await self._source.poll_once(self._stop)
            except Retryable as exc:
                failures += 1
                self._failing = f"poll failing: {type(exc).__name__}"
                delay = backoff_delay(
                    failures, initial=1.0, maximum=self._max_backoff_s, multiplier=2.0, retry_after=exc.retry_after
                )
                log.warning("poll failed (%s: %s); next try in %.1fs", type(exc).__name__, exc, delay)
            except CrmpilotError as exc:
                log.critical("crm_source stopped: %s: %s", type(exc).__name__, exc)
                return 1
            else:
                failures, delay, self._failing = 0, self._interval_s, None
                self.polls += 1
                for sobject, s in stats.items():
                    if s.read:
                        log.info("poll", extra={"fields": {"sobject": sobject, **vars(s)}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        log.info("stopped after %d poll(s)", self.polls)
        return 0
