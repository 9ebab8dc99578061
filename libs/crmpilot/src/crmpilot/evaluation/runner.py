"""Run ``classify_ticket`` over a labelled dataset through the shared LLM client, item by item.

Every item goes through :meth:`LLMClient.run` exactly as a service's call
would (redaction, limits, retries, cost, spans), ``concurrency`` at a time, so
the local provider batches embeddings the way it does in production. A failed
item is recorded with its error type and counts as wrong; the run goes on.

One warm-up call (the first item, not recorded) runs before the clock starts,
so latency figures are the steady state of a process whose model is loaded
(the local model loads on its first call and embeds the label texts once).

Items whose gold label is in ``out_of_scope`` are recorded as out of scope
(``ItemResult.in_scope`` false); an answer whose rationale begins with
:data:`~crmpilot.llm.local.heads.OUT_OF_SCOPE_NOTE` is recorded as flagged.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from crmpilot.evaluation.dataset import Dataset, LabelledTicket
from crmpilot.evaluation.report import (
    DatasetInfo,
    EvalReport,
    ItemResult,
    RunInfo,
    build_report,
)
from crmpilot.llm.base import TaskSpec
from crmpilot.llm.client import LLMClient
from crmpilot.llm.errors import LLMError
from crmpilot.llm.local.heads import OUT_OF_SCOPE_NOTE
from crmpilot.tasks.classify_ticket import TicketClassificationOutput

__all__ = ["evaluate", "run_items"]

ItemDone = Callable[[ItemResult], None]


async def _one(
    client: LLMClient,
    spec: TaskSpec[TicketClassificationOutput],
    index: int,
    ticket: LabelledTicket,
    out_of_scope: Collection[str] = (),
) -> tuple[ItemResult, dict[str, Any]]:
    started = time.monotonic()
    in_scope = ticket.label not in out_of_scope
    try:
        run = await client.run(spec, ticket.payload, bypass_cache=True)
    except LLMError as exc:
        latency = (time.monotonic() - started) * 1000
        item = ItemResult(
            index=index,
            gold=ticket.label,
            predicted=None,
            confidence=None,
            latency_ms=latency,
            tokens_in=exc.usage.tokens_in,
            tokens_out=exc.usage.tokens_out,
            cost_usd=float(exc.usage.cost_usd),
            error=exc.error_type,
            in_scope=in_scope,
        )
        return item, {}
    item = ItemResult(
        index=index,
        gold=ticket.label,
        predicted=run.output.category,
        confidence=run.output.confidence.category,
        latency_ms=run.latency_ms,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost_usd=float(run.cost_usd),
        in_scope=in_scope,
        flagged=run.output.rationale.startswith(OUT_OF_SCOPE_NOTE),
    )
    who = {"provider": run.provider, "model": run.model, "model_version": run.model_version}
    return item, {**who, "confidence_source": run.confidence_source}


async def run_items(
    client: LLMClient,
    spec: TaskSpec[TicketClassificationOutput],
    dataset: Dataset,
    *,
    concurrency: int = 8,
    on_item: ItemDone | None = None,
    warmup: bool = True,
    out_of_scope: Collection[str] = (),
) -> tuple[list[ItemResult], dict[str, str | None], float]:
    """Per-item results (in dataset order), the most common provider/model/version/confidence source, and the
    wall time.

    ``out_of_scope``: gold labels that mark an item as out of scope.
    """
    if warmup and dataset.items:
        await _one(client, spec, -1, dataset.items[0])
    gate = asyncio.Semaphore(max(1, concurrency))
    seen: Counter[tuple[Any, ...]] = Counter()

    async def bounded(index: int, ticket: LabelledTicket) -> ItemResult:
        async with gate:
            item, who = await _one(client, spec, index, ticket, out_of_scope)
        if who:
            seen[(who["provider"], who["model"], who["model_version"], who["confidence_source"])] += 1
        if on_item is not None:
            on_item(item)
        return item

    started = time.monotonic()
    items = await asyncio.gather(*(bounded(i, t) for i, t in enumerate(dataset.items)))
    wall = time.monotonic() - started
    provider, model, version, source = seen.most_common(1)[0][0] if seen else (None, None, None, None)
    who = {"provider": provider, "model": model, "model_version": version, "confidence_source": source}
    return list(items), who, wall


async def evaluate(
    client: LLMClient,
    spec: TaskSpec[TicketClassificationOutput],
    dataset: Dataset,
    *,
    name: str,
    head: str | None = None,
    concurrency: int = 8,
    bins: int = 10,
    on_item: ItemDone | None = None,
    warmup: bool = True,
    out_of_scope: Collection[str] = (),
) -> EvalReport:
    """Run the dataset and build its report; ``out_of_scope``: gold labels that mark out-of-scope items."""
    items, who, wall = await run_items(
        client, spec, dataset, concurrency=concurrency, on_item=on_item, warmup=warmup,
        out_of_scope=frozenset(out_of_scope),
    )  # fmt: skip
    primary = client.providers[0]
    run = RunInfo(
        task=spec.name,
        provider=who["provider"] or primary.name,
        model=who["model"] or str(getattr(primary, "model", primary.name)),
        model_version=who["model_version"],
        head=head,
        prompt_id=spec.prompt.id,
        prompt_version=spec.prompt.version,
        prompt_hash=spec.prompt.hash,
        concurrency=concurrency,
    )
    info = DatasetInfo(
        source=dataset.source,
        sha256=dataset.sha256,
        items=len(dataset),
        skipped=dataset.skipped,
        labels=len(dataset.labels),
    )
    return build_report(items, name=name, dataset=info, run=run, wall_s=wall, bins=bins)
