"""The faust app: result topics in, windowed KPI tables, JSON over HTTP, rows to the warehouse.

Two agents:

``extract``
    reads the result topics (raw JSON envelopes), decodes each with
    :func:`crmpilot.events.decode` and sends its :class:`Observation` to the
    internal topic ``<app_id>-observations``, keyed by task. A record that does
    not decode is logged (position only) and skipped: the services that own
    these topics dead-letter poison; KPIs only count results.
``aggregate``
    reads that topic and updates one faust table per window size, tumbling and
    relative to the observation's ``at``. Table keys are derived from the stream
    key (the task), so each task's windows and their changelog live on one
    partition: a restart or a second worker recovers consistent windows.

Every changed window is queued (:class:`PendingWindows`) and upserted into
``warehouse.kpi_window`` every ``flush_interval_s``, after table recovery (all
retained windows) and at shutdown. ``GET /kpi`` (optional ``?window_size_s=60``,
``?task=classify_ticket``) serves the windows this worker holds, newest first.

Each result is counted once, by result id (:class:`SeenResults`, a table of its
own): a result a service produced again, or one the aggregator re-reads after a
crash, adds nothing. The exact figures over all time are in the ``bi`` views.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import faust
from faust.types import FieldDescriptorT
from faust.web import Request, Response, View
from mode.types import SignalHandlerT

from crmpilot.errors import Retryable
from crmpilot.events import PoisonMessage, ReviewDecision, decode
from crmpilot.warehouse.kpi import KpiStore, KpiWindow

from .dedupe import SeenResults
from .observation import Observation, observe, table_keys
from .settings import Settings
from .stats import WindowStats
from .windows import PendingWindows, is_late, kpi_window, window_json, window_start

__all__ = ["build_app"]

log = logging.getLogger("kpi_aggregator")


def build_app(
    settings: Settings,
    *,
    broker: str,
    partitions: int,
    store: KpiStore,
    client_id: str,
    topics: tuple[str, ...] | None = None,
    dimensions: Mapping[str, str] | None = None,
) -> faust.App:
    """A configured faust app; nothing connects until a worker starts it."""
    app = faust.App(
        settings.app_id,
        broker=broker,
        broker_client_id=client_id,
        store="memory://",
        topic_replication_factor=settings.replication,
        topic_partitions=partitions,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        datadir=str(settings.data_dir),
        autodiscover=False,
    )
    results = app.topic(*(topics or settings.topics), key_serializer="raw", value_serializer="raw")
    observations = app.topic(
        f"{settings.app_id}-observations",
        key_type=str,
        value_type=Observation,
        partitions=partitions,
        replicas=settings.replication,
        internal=True,
    )
    tables = {
        size: app.Table(f"kpi-{size}s", default=dict, partitions=partitions)
        .tumbling(size, expires=timedelta(seconds=size * settings.retain_windows))
        # a faust Record's class attribute is its field descriptor; the annotation only says what instances hold
        .relative_to_field(cast("FieldDescriptorT[Any]", Observation.at))
        for size in settings.window_sizes_s
    }
    seen = SeenResults(
        app.Table("kpi-seen-results", partitions=partitions),
        keep_s=max(size * (settings.retain_windows + 1) for size in settings.window_sizes_s),
    )
    pending = PendingWindows()

    def late_everywhere(at: float) -> bool:
        now = time.time()
        return all(is_late(size, at, now=now, retain=settings.retain_windows) for size in tables)

    def windows() -> Iterator[KpiWindow]:
        for size, wrapper in tables.items():
            for (key, (start, _end)), value in wrapper.table.items():
                yield kpi_window(size, key, start, WindowStats.from_json(value))

    @app.agent(results)
    async def extract(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                obs = observe(decode(raw), dimensions)
            except PoisonMessage as exc:
                message = stream.current_event.message if stream.current_event else None
                where = f"{message.topic}[{message.partition}]@{message.offset}" if message else "?"
                log.warning("skipped a record that does not decode at %s: %s", where, type(exc).__name__)
                continue
            if obs is not None and not late_everywhere(obs.at):
                await observations.send(key=obs.task, value=obs)

    @app.agent(observations)
    async def aggregate(stream: faust.StreamT[Observation]) -> None:
        async for obs in stream:
            if seen.counted(obs.result_id):
                continue
            now = time.time()
            for size, table in tables.items():
                if is_late(size, obs.at, now=now, retain=settings.retain_windows):
                    continue
                for key in table_keys(obs):
                    stats = WindowStats.from_json(table[key].value())
                    stats.add(
                        review=cast(ReviewDecision, obs.review),
                        latency_ms=obs.latency_ms,
                        cost_usd=Decimal(obs.cost_usd),
                        tokens_in=obs.tokens_in,
                        tokens_out=obs.tokens_out,
                        cache_hit=obs.cache_hit,
                    )
                    table[key] = stats.to_json()
                    pending.put(kpi_window(size, key, window_start(size, obs.at), stats))
            event = stream.current_event
            partition = event.message.partition if event is not None else 0
            seen.add(obs.result_id, at=obs.at, partition=partition)
            seen.expire(partition, now=now)

    async def flush() -> None:
        batch = pending.drain()
        if not batch:
            return
        try:
            written = await asyncio.to_thread(store.upsert_windows, batch)
        except Retryable as exc:
            pending.give_back(batch)
            log.warning("could not write %d KPI windows, will retry: %s", len(batch), exc)
            return
        log.debug("wrote %d of %d KPI windows", written, len(batch))

    app.timer(interval=settings.flush_interval_s, name="flush_kpi_windows")(flush)

    async def on_recovered() -> None:
        for window in windows():
            pending.put(window)

    for wrapper in tables.values():
        wrapper.table.on_recover(on_recovered)  # what WindowWrapper.on_recover does; its type (WindowWrapperT) lacks it

    async def flush_at_shutdown(sender: faust.App, **_: Any) -> None:
        await flush()

    # mypy matches no function to mode's SignalHandlerT (a mypy_extensions callable type), not even its own signature
    app.on_before_shutdown.connect(cast("SignalHandlerT[Any]", flush_at_shutdown))

    @app.page("/kpi")
    class KpiView(View):
        async def get(self, request: Request) -> Response:
            size = request.query.get("window_size_s")
            task = request.query.get("task")
            selected = [
                w
                for w in windows()
                if (size is None or str(w.window_size) == size) and (task is None or w.task == task)
            ]
            selected.sort(key=lambda w: (w.window_size, -w.window_start.timestamp(), w.task, w.dimension))
            return self.json(
                {"generated_at": datetime.now(UTC).isoformat(), "windows": [window_json(w) for w in selected]}
            )

    return app
