"""The declared Kafka topics of crmpilot and how to make a cluster match them.

``topics.yaml`` (shipped inside this package; ``infra/topics.yaml`` links to it)
lists every topic with its partitions, ``retention.ms`` and ``cleanup.policy``;
a topic with a ``dlq:`` block gets a dead-letter twin ``<name><dlq_suffix>``.

:func:`apply_topics` reads the cluster's state through the ``AdminClient``,
plans the difference (:func:`plan_changes`, pure) and applies it: creates
missing topics, grows partition counts, sets differing configs with an
*incremental* alter (other configs of the topic are left alone). Running it
twice changes nothing the second time. Partitions never shrink: a topic with
more partitions than declared is reported, not touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported without __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import TopicAdminError

__all__ = [
    "TopicSpec",
    "TopicState",
    "TopicChange",
    "default_topics_file",
    "load_topics",
    "parse_topics",
    "inspect_topics",
    "plan_changes",
    "apply_topics",
]

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

CleanupPolicy = Literal["delete", "compact", "compact,delete"]


class TopicSpec(BaseModel):
    """One topic as it should exist on the cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    partitions: int = Field(ge=1)
    replication_factor: int = Field(default=-1, description="-1: the broker's default.replication.factor")
    retention_ms: int = Field(ge=-1, description="retention.ms; -1 keeps forever")
    cleanup_policy: CleanupPolicy = "delete"
    config: Mapping[str, str] = Field(default_factory=dict, description="further topic configs, verbatim")
    dlq_of: str | None = Field(default=None, description="for a dead-letter twin: the topic it serves")

    @field_validator("name")
    @classmethod
    def _legal_name(cls, name: str) -> str:
        if not _TOPIC_NAME.match(name) or name in {".", ".."}:
            raise ValueError(f"{name!r} is not a legal Kafka topic name")
        return name

    def configs(self) -> dict[str, str]:
        """The topic configs to create with and to keep in sync."""
        return {**self.config, "retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


# --- the file format ------------------------------------------------------------------


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replication_factor: int = -1
    cleanup_policy: CleanupPolicy = "delete"


class _DlqDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partitions: int = Field(default=3, ge=1)
    retention_ms: int = Field(default=30 * 24 * 3600 * 1000, ge=-1)


class _DlqDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partitions: int | None = Field(default=None, ge=1)
    retention_ms: int | None = Field(default=None, ge=-1)


class _TopicDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    partitions: int = Field(ge=1)
    retention_ms: int = Field(ge=-1)
    cleanup_policy: CleanupPolicy | None = None
    replication_factor: int | None = None
    config: dict[str, str] = Field(default_factory=dict)
    dlq: _DlqDecl | None = None


class _TopicsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    dlq_suffix: str = Field(default=".dlq", min_length=1)
    defaults: _Defaults = Field(default_factory=_Defaults)
    dlq_defaults: _DlqDefaults = Field(default_factory=_DlqDefaults)
    topics: list[_TopicDecl] = Field(min_length=1)


def default_topics_file() -> Path:
    """The ``topics.yaml`` shipped with the package."""
    return Path(str(resources.files(__package__).joinpath("topics.yaml")))


def load_topics(path: Path | None = None) -> tuple[TopicSpec, ...]:
    """Read and expand a topics file (default: the packaged one)."""
    path = path or default_topics_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopicAdminError(f"cannot read topics file {path}: {exc}") from exc
    return parse_topics(text, source=str(path))


def parse_topics(text: str, *, source: str = "<topics>") -> tuple[TopicSpec, ...]:
    """Parse a topics file into specs, dead-letter twins included (in file order)."""
    try:
        raw: Any = yaml.safe_load(text)
        decl = _TopicsFile.model_validate(raw)
        specs = list(_expand(decl))
    except (yaml.YAMLError, ValidationError) as exc:
        raise TopicAdminError(f"invalid topics file {source}: {exc}") from exc
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise TopicAdminError(f"invalid topics file {source}: topic {spec.name} is declared twice")
        seen.add(spec.name)
    return tuple(specs)


def _expand(decl: _TopicsFile) -> Iterable[TopicSpec]:
    d = decl.defaults
    for t in decl.topics:
        rf = t.replication_factor if t.replication_factor is not None else d.replication_factor
        yield TopicSpec(
            name=t.name,
            partitions=t.partitions,
            replication_factor=rf,
            retention_ms=t.retention_ms,
            cleanup_policy=t.cleanup_policy or d.cleanup_policy,
            config=t.config,
        )
        if t.dlq is not None:
            yield TopicSpec(
                name=t.name + decl.dlq_suffix,
                partitions=t.dlq.partitions or decl.dlq_defaults.partitions,
                replication_factor=rf,
                retention_ms=t.dlq.retention_ms if t.dlq.retention_ms is not None else decl.dlq_defaults.retention_ms,
                cleanup_policy="delete",
                dlq_of=t.name,
            )


# --- cluster state, plan, apply ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicState:
    """What the cluster has for one declared topic (``partitions`` is None when missing)."""

    spec: TopicSpec
    partitions: int | None
    config: Mapping[str, str | None]


Action = Literal["create", "add_partitions", "alter_config", "cannot_shrink"]


@dataclass(frozen=True, slots=True)
class TopicChange:
    """One difference between the declaration and the cluster, and what fixes it."""

    topic: str
    action: Action
    detail: str
    configs: Mapping[str, str] | None = None
    partitions: int | None = None

    @property
    def actionable(self) -> bool:
        return self.action != "cannot_shrink"


def inspect_topics(admin: AdminClient, specs: Sequence[TopicSpec], *, timeout: float = 15.0) -> list[TopicState]:
    """Read partition counts and the declared config keys of every declared topic."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise TopicAdminError(f"cannot list topics: {_describe(exc)}") from exc
    present = {name: len(meta.partitions) for name, meta in metadata.topics.items() if meta.error is None}
    existing = [s for s in specs if s.name in present]
    described: dict[str, dict[str, str | None]] = {}
    if existing:
        futures = admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, s.name) for s in existing], request_timeout=timeout
        )
        for resource, future in futures.items():
            entries = _result(future, f"describe configs of {resource.name}", timeout)
            described[resource.name] = {k: v.value for k, v in entries.items()}
    states = []
    for spec in specs:
        config = described.get(spec.name, {})
        states.append(TopicState(spec, present.get(spec.name), {k: config.get(k) for k in spec.configs()}))
    return states


def plan_changes(states: Iterable[TopicState]) -> list[TopicChange]:
    """The changes that make the cluster match the declaration (pure)."""
    changes: list[TopicChange] = []
    for state in states:
        spec = state.spec
        if state.partitions is None:
            changes.append(
                TopicChange(
                    spec.name,
                    "create",
                    f"create with {spec.partitions} partition(s), {_fmt(spec.configs())}",
                    configs=spec.configs(),
                    partitions=spec.partitions,
                )
            )
            continue
        if state.partitions < spec.partitions:
            changes.append(
                TopicChange(
                    spec.name,
                    "add_partitions",
                    f"partitions {state.partitions} -> {spec.partitions}",
                    partitions=spec.partitions,
                )
            )
        elif state.partitions > spec.partitions:
            changes.append(
                TopicChange(
                    spec.name,
                    "cannot_shrink",
                    f"has {state.partitions} partitions, declared {spec.partitions}: partitions cannot be removed",
                )
            )
        differing = {k: v for k, v in spec.configs().items() if state.config.get(k) != v}
        if differing:
            detail = ", ".join(f"{k}: {state.config.get(k)} -> {v}" for k, v in differing.items())
            changes.append(TopicChange(spec.name, "alter_config", detail, configs=differing))
    return changes


def apply_topics(
    admin: AdminClient, specs: Sequence[TopicSpec], *, dry_run: bool = False, timeout: float = 30.0
) -> list[TopicChange]:
    """Make the cluster match ``specs``; return the changes made (or, dry, planned)."""
    changes = plan_changes(inspect_topics(admin, specs, timeout=timeout))
    if dry_run:
        return changes
    by_name = {s.name: s for s in specs}
    creates = [
        NewTopic(
            c.topic,
            num_partitions=by_name[c.topic].partitions,
            replication_factor=by_name[c.topic].replication_factor,
            config=dict(c.configs or {}),
        )
        for c in changes
        if c.action == "create"
    ]
    grows = [NewPartitions(c.topic, by_name[c.topic].partitions) for c in changes if c.action == "add_partitions"]
    alters = [
        ConfigResource(
            ResourceType.TOPIC,
            c.topic,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in (c.configs or {}).items()
            ],
        )
        for c in changes
        if c.action == "alter_config"
    ]
    if creates:
        created = admin.create_topics(creates, operation_timeout=timeout, request_timeout=timeout)
        for name, future in created.items():
            _result(future, f"create topic {name}", timeout, tolerate=KafkaError.TOPIC_ALREADY_EXISTS)
    if grows:
        grown = admin.create_partitions(grows, operation_timeout=timeout, request_timeout=timeout)
        for name, future in grown.items():
            _result(future, f"add partitions to {name}", timeout)
    if alters:
        altered = admin.incremental_alter_configs(alters, request_timeout=timeout)
        for resource, future in altered.items():
            _result(future, f"alter configs of {resource.name}", timeout)
    if creates or grows:
        _await_metadata(admin, {c.topic: c.partitions or 0 for c in changes if c.partitions}, timeout)
    return changes


def _await_metadata(admin: AdminClient, partitions: Mapping[str, int], timeout: float) -> None:
    """Wait until the brokers' metadata shows the created/grown topics, so a caller can use them at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            topics = admin.list_topics(timeout=timeout).topics
        except KafkaException as exc:
            raise TopicAdminError(f"cannot list topics: {_describe(exc)}") from exc
        lagging = [t for t, n in partitions.items() if t not in topics or len(topics[t].partitions) < n]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise TopicAdminError(f"topics not visible in metadata after {timeout:g}s: {', '.join(lagging)}")
        time.sleep(0.1)


def _result(future: Future[Any], what: str, timeout: float, *, tolerate: int | None = None) -> Any:
    try:
        return future.result(timeout=timeout)
    except KafkaException as exc:
        if tolerate is not None and exc.args and exc.args[0].code() == tolerate:
            return None
        raise TopicAdminError(f"{what} failed: {_describe(exc)}") from exc
    except TimeoutError as exc:
        raise TopicAdminError(f"{what} timed out after {timeout:g}s") from exc


def _describe(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return f"{err.name()}: {err.str()}" if isinstance(err, KafkaError) else str(exc)


def _fmt(configs: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(configs.items()))
