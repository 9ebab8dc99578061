"""`crmpilot topics`: apply the declared Kafka topics to a cluster, or list their state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from confluent_kafka.admin import AdminClient

from crmpilot.enrichments import Registry, SpecError, load_registry
from crmpilot.settings import KafkaSettings
from crmpilot.streaming.errors import TopicAdminError
from crmpilot.streaming.topics import TopicSpec, apply_topics, inspect_topics, load_topics, plan_changes

app = typer.Typer(
    help="Create or update crmpilot's Kafka topics (and their .dlq twins) from topics.yaml.",
    no_args_is_help=True,
)

SOURCE_RETENTION_MS = 7 * 24 * 3600 * 1000
RESULT_RETENTION_MS = 30 * 24 * 3600 * 1000

_FILE = typer.Option(None, "--file", "-f", help="Topics file (default: the one shipped with crmpilot).")
_TIMEOUT = typer.Option(30.0, "--timeout", help="Seconds to wait for the cluster.")


def _admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient({**settings.librdkafka(), "client.id": f"{settings.client_id_prefix}-cli-topics"})


def _load(file: Path | None) -> tuple[TopicSpec, ...]:
    """The topics file's topics, and those of the declared enrichments (CRMPILOT_ENRICHMENTS_DIR) it does not name."""
    try:
        declared = load_topics(file)
        registry = load_registry()
    except (TopicAdminError, SpecError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return declared + enrichment_topics(registry, {t.name for t in declared})


def enrichment_topics(registry: Registry, known: set[str]) -> tuple[TopicSpec, ...]:
    """Each spec's source topics (7 days) and output topic (30 days), each with its ``.dlq`` twin, unless ``known``."""
    wanted = {t: SOURCE_RETENTION_MS for t in registry.source_topics} | {
        t: RESULT_RETENTION_MS for t in registry.output_topics
    }
    out: list[TopicSpec] = []
    for name, retention in wanted.items():
        if name in known:
            continue
        out.append(TopicSpec(name=name, partitions=6, retention_ms=retention))
        out.append(TopicSpec(name=name + ".dlq", partitions=3, retention_ms=RESULT_RETENTION_MS, dlq_of=name))
    return tuple(out)


@app.command("apply")
def apply(
    file: Path | None = _FILE,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
    timeout: float = _TIMEOUT,
) -> None:
    """Create missing topics, grow partitions, set differing configs (idempotent)."""
    specs = _load(file)
    settings = KafkaSettings()
    try:
        changes = apply_topics(_admin(settings), specs, dry_run=dry_run, timeout=timeout)
    except TopicAdminError as exc:
        typer.echo(f"error: {exc} (bootstrap {settings.bootstrap})", err=True)
        raise typer.Exit(1) from exc
    verb = "would" if dry_run else "did"
    for change in changes:
        mark = "!" if not change.actionable else ("~" if dry_run else "+")
        typer.echo(f"{mark} {change.topic}: {change.action} ({change.detail})")
    actionable = sum(c.actionable for c in changes)
    typer.echo(f"{len(specs)} topic(s) declared, {verb} apply {actionable} change(s)")
    if any(not c.actionable for c in changes):
        raise typer.Exit(3)


@app.command("list")
def list_(
    file: Path | None = _FILE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    timeout: float = _TIMEOUT,
) -> None:
    """Show every declared topic next to its state on the cluster."""
    specs = _load(file)
    settings = KafkaSettings()
    try:
        states = inspect_topics(_admin(settings), specs, timeout=timeout)
    except TopicAdminError as exc:
        typer.echo(f"error: {exc} (bootstrap {settings.bootstrap})", err=True)
        raise typer.Exit(1) from exc
    changes = plan_changes(states)
    rows: list[dict[str, Any]] = []
    for state in states:
        mine = [c for c in changes if c.topic == state.spec.name]
        rows.append(
            {
                "name": state.spec.name,
                "dlq_of": state.spec.dlq_of,
                "partitions": state.partitions,
                "declared_partitions": state.spec.partitions,
                "retention_ms": state.config.get("retention.ms"),
                "declared_retention_ms": str(state.spec.retention_ms),
                "cleanup_policy": state.config.get("cleanup.policy"),
                "status": "missing" if state.partitions is None else ("differs" if mine else "ok"),
                "differences": [c.detail for c in mine if state.partitions is not None],
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    typer.echo(f"{'topic':<{width}}  {'partitions':>10}  {'retention.ms':>12}  status")
    for r in rows:
        parts = "-" if r["partitions"] is None else str(r["partitions"])
        typer.echo(f"{r['name']:<{width}}  {parts:>10}  {r['retention_ms'] or '-':>12}  {r['status']}")
        for diff in r["differences"]:
            typer.echo(f"{'':<{width}}    {diff}")
