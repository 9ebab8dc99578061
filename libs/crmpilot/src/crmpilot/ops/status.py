"""``crmpilot status``: is Kafka up, are the topics there, are the groups consuming, are the services ready.

Each part is collected on its own, so one that fails (Kafka down) is reported
with its error while the others are still shown. Each declared enrichment (``CRMPILOT_ENRICHMENTS_DIR``) is shown with
its enricher's consumer group: consuming or not, and its lag. Services are probed on
``GET <base URL>/readyz`` where a health server is configured: the services'
own ``CRMPILOT_<SERVICE>_HTTP_PORT`` / ``_HTTP_HOST`` (the same variables the
services read, :class:`crmpilot.service.EndpointSettings`), overridden by
``CRMPILOT_OPS_ENDPOINTS`` and ``--endpoint``; none configured is not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from crmpilot.enrichments.registry import Registry
from crmpilot.service import EndpointSettings
from crmpilot.settings import KafkaSettings
from crmpilot.streaming.topics import TopicSpec

from .broker import Cluster, admin_client, describe_cluster
from .errors import GroupNotFound, OpsError
from .lag import GroupLag, group_lag, list_groups

__all__ = [
    "SERVICES",
    "EnrichmentStatus",
    "Readiness",
    "StatusReport",
    "TopicPresence",
    "collect_status",
    "enrichment_status",
    "probe_ready",
    "service_endpoints",
]

SERVICES = ("ticket_classifier", "email_summarizer", "warehouse_writer", "crm_writer", "crm_source")
"""The services run by :func:`crmpilot.service.run_service` (each may serve /readyz)."""


@dataclass(frozen=True, slots=True)
class TopicPresence:
    name: str
    present: bool
    partitions: int | None
    declared_partitions: int


@dataclass(frozen=True, slots=True)
class Readiness:
    service: str
    url: str
    ready: bool
    detail: str


@dataclass(frozen=True, slots=True)
class EnrichmentStatus:
    """A declared enrichment and its enricher's group (``lag`` is ``None`` when the group does not exist)."""

    name: str
    version: int
    path: str
    group: str
    topics: tuple[str, ...]
    output_topic: str
    members: int
    lag: int | None

    @property
    def consuming(self) -> bool:
        return self.members > 0


@dataclass(frozen=True, slots=True)
class StatusReport:
    kafka: Cluster | None
    kafka_error: str | None
    topics: tuple[TopicPresence, ...]
    groups: tuple[GroupLag, ...]
    group_errors: Mapping[str, str]
    services: tuple[Readiness, ...]
    enrichments: tuple[EnrichmentStatus, ...] = ()
    enrichments_error: str | None = None
    """Why the declared enrichments do not load (every problem with its file and line)."""

    @property
    def healthy(self) -> bool:
        """Kafka answers, every declared topic exists, every group could be read, every probed service is ready,
        the enrichment specs load."""
        return (
            self.kafka is not None
            and all(t.present for t in self.topics)
            and not self.group_errors
            and all(s.ready for s in self.services)
            and self.enrichments_error is None
        )


def service_endpoints(enrichments: Iterable[str] = ()) -> dict[str, str]:
    """Base URLs of the services whose ``CRMPILOT_<SERVICE>_HTTP_PORT`` is set in this environment; the enricher of
    each of ``enrichments`` is ``enricher_<name>`` (``CRMPILOT_ENRICHER_<NAME>_HTTP_PORT``)."""
    found: dict[str, str] = {}
    for name in (*SERVICES, *(f"enricher_{e}" for e in enrichments)):
        settings = EndpointSettings(_env_prefix=f"CRMPILOT_{name.upper()}_")  # type: ignore[call-arg]  # _env_prefix is a pydantic-settings init option, not a field
        if settings.http_port:
            host = "127.0.0.1" if settings.http_host in {"", "0.0.0.0", "::"} else settings.http_host
            found[name] = f"http://{host}:{settings.http_port}"
    return found


def probe_ready(service: str, base_url: str, timeout: float) -> Readiness:
    """``GET {base_url}/readyz``: ready on 2xx; anything else says why not."""
    url = base_url.rstrip("/") + "/readyz"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return Readiness(service, url, False, f"no answer: {type(exc).__name__}: {exc}")
    body = response.text.strip().replace("\n", " ")
    return Readiness(service, url, response.is_success, f"HTTP {response.status_code} {body[:120]}".strip())


def collect_status(
    kafka: KafkaSettings,
    declared: Sequence[TopicSpec],
    *,
    group_prefix: str,
    endpoints: Mapping[str, str],
    timeout: float,
    registry: Registry | None = None,
    registry_error: str | None = None,
) -> StatusReport:
    """``registry``: the declared enrichments to show (``registry_error``: why they did not load)."""
    services = tuple(probe_ready(name, url, timeout) for name, url in sorted(endpoints.items()))
    admin = admin_client(kafka, "status")
    try:
        cluster = describe_cluster(admin, kafka.bootstrap, timeout)
    except OpsError as exc:
        enrichments = enrichment_status(registry, ()) if registry is not None else ()
        return StatusReport(None, str(exc), (), (), {}, services, enrichments, registry_error)
    topics = tuple(
        TopicPresence(s.name, s.name in cluster.topics, cluster.topics.get(s.name), s.partitions) for s in declared
    )
    groups: list[GroupLag] = []
    errors: dict[str, str] = {}
    try:
        names = list_groups(admin, group_prefix, timeout)
    except OpsError as exc:
        names, errors["*"] = [], str(exc)
    for name in names:
        try:
            groups.append(group_lag(admin, name, timeout))
        except GroupNotFound:  # deleted since it was listed
            continue
        except OpsError as exc:
            errors[name] = str(exc)
    enrichments = enrichment_status(registry, groups) if registry is not None else ()
    return StatusReport(cluster, None, topics, tuple(groups), errors, services, enrichments, registry_error)


def enrichment_status(registry: Registry, groups: Sequence[GroupLag]) -> tuple[EnrichmentStatus, ...]:
    """Each spec of ``registry`` with its enricher group's members and lag (from ``groups``)."""
    by_name = {g.group: g for g in groups}
    out = []
    for entry in registry.entries.values():
        spec = entry.spec
        group = by_name.get(spec.group)
        out.append(
            EnrichmentStatus(
                name=spec.name,
                version=spec.version,
                path=str(entry.path),
                group=spec.group,
                topics=tuple(spec.source.topics),
                output_topic=spec.topic,
                members=len(group.members) if group else 0,
                lag=group.total_lag if group else None,
            )
        )
    return tuple(out)
