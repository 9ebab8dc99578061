"""``crmpilot status``: is Kafka up, are the topics there, are the groups consuming, are the services ready.

Each part is collected on its own, so one that fails (Kafka down) is reported
with its error while the others are still shown. Services are probed on
``GET <base URL>/readyz`` when their health server's URL is configured
(``CRMPILOT_OPS_ENDPOINTS`` or ``--endpoint``); none configured is not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from crmpilot.settings import KafkaSettings
from crmpilot.streaming.topics import TopicSpec

from .broker import Cluster, admin_client, describe_cluster
from .errors import GroupNotFound, OpsError
from .lag import GroupLag, group_lag, list_groups

__all__ = ["TopicPresence", "Readiness", "StatusReport", "collect_status", "probe_ready"]


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
class StatusReport:
    kafka: Cluster | None
    kafka_error: str | None
    topics: tuple[TopicPresence, ...]
    groups: tuple[GroupLag, ...]
    group_errors: Mapping[str, str]
    services: tuple[Readiness, ...]

    @property
    def healthy(self) -> bool:
        """Kafka answers, every declared topic exists, every group could be read, every probed service is ready."""
        return (
            self.kafka is not None
            and all(t.present for t in self.topics)
            and not self.group_errors
            and all(s.ready for s in self.services)
        )


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
) -> StatusReport:
    services = tuple(probe_ready(name, url, timeout) for name, url in sorted(endpoints.items()))
    admin = admin_client(kafka, "status")
    try:
        cluster = describe_cluster(admin, kafka.bootstrap, timeout)
    except OpsError as exc:
        return StatusReport(None, str(exc), (), (), {}, services)
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
    return StatusReport(cluster, None, topics, tuple(groups), errors, services)
