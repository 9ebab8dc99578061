"""Topic declarations: parsing, DLQ twins, and the plan against a cluster's state."""

from __future__ import annotations

import pytest

from crmpilot.enrichments import load_registry
from crmpilot.streaming.errors import TopicAdminError
from crmpilot.streaming.topics import TopicSpec, TopicState, load_topics, parse_topics, plan_changes

DAY = 24 * 3600 * 1000


def test_packaged_file_declares_every_topic_with_a_dlq_twin() -> None:
    specs = {s.name: s for s in load_topics()}
    sources = ["crm.case.events", "crm.email.events", "erp.request.events", "crm.lead.events"]
    results = ["ai.ticket.classified", "ai.email.summarized", "ai.request.scored"]
    for name in sources:
        assert specs[name].partitions == 6 and specs[name].retention_ms == 7 * DAY
    for name in results:
        assert specs[name].partitions == 6 and specs[name].retention_ms == 30 * DAY
    for name in sources + results:
        twin = specs[f"{name}.dlq"]
        assert twin.dlq_of == name and 1 <= twin.partitions <= 3 and twin.retention_ms == 30 * DAY
    assert len(specs) == 14
    assert all(s.cleanup_policy == "delete" for s in specs.values())
    scorer = load_registry([]).get("score_request")  # the built-in enrichment reads and writes declared topics
    assert scorer.output_topic == "ai.request.scored"
    assert set(scorer.source.topics) == {"erp.request.events", "crm.lead.events"}


def test_parse_defaults_overrides_and_configs() -> None:
    specs = parse_topics(
        """
version: 1
dlq_suffix: -dead
defaults: {replication_factor: 3, cleanup_policy: compact}
topics:
  - name: a
    partitions: 2
    retention_ms: 1000
    config: {min.insync.replicas: "2"}
    dlq: {partitions: 1}
  - name: b
    partitions: 1
    retention_ms: -1
    cleanup_policy: delete
"""
    )
    assert [s.name for s in specs] == ["a", "a-dead", "b"]
    a, dead, b = specs
    assert a.configs() == {"min.insync.replicas": "2", "retention.ms": "1000", "cleanup.policy": "compact"}
    assert a.replication_factor == 3 and dead.replication_factor == 3
    assert dead.partitions == 1 and dead.retention_ms == 30 * DAY and dead.cleanup_policy == "delete"
    assert b.cleanup_policy == "delete" and b.dlq_of is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: 2\ntopics: [{name: a, partitions: 1, retention_ms: 1}]", "version"),
        ("version: 1\ntopics: [{name: 'bad name', partitions: 1, retention_ms: 1}]", "legal"),
        ("version: 1\ntopics: [{name: a, partitions: 0, retention_ms: 1}]", "partitions"),
        ("version: 1\ntopics: [{name: a, partitions: 1, retention_ms: 1, colour: red}]", "colour"),
        (
            "version: 1\ntopics: [{name: a, partitions: 1, retention_ms: 1, dlq: {}}, {name: a.dlq, "
            "partitions: 1, retention_ms: 1}]",
            "twice",
        ),
        ("version: 1\ntopics: [\n", "invalid"),
    ],
)
def test_invalid_files_are_rejected_with_a_reason(text: str, needle: str) -> None:
    with pytest.raises(TopicAdminError, match=needle):
        parse_topics(text)


def _spec(**kw: object) -> TopicSpec:
    return TopicSpec(**{"name": "t", "partitions": 3, "retention_ms": 1000, **kw})  # type: ignore[arg-type]  # the overrides are each test's own, checked by TopicSpec's validation


def test_plan_creates_grows_alters_and_refuses_to_shrink() -> None:
    spec = _spec()
    ok = TopicState(spec, 3, {"retention.ms": "1000", "cleanup.policy": "delete"})
    assert plan_changes([ok]) == []

    missing = plan_changes([TopicState(spec, None, {})])
    assert [(c.action, c.partitions) for c in missing] == [("create", 3)]
    assert missing[0].configs == {"retention.ms": "1000", "cleanup.policy": "delete"}

    grow = plan_changes([TopicState(spec, 2, {"retention.ms": "5", "cleanup.policy": "delete"})])
    assert [(c.action, c.partitions, c.configs) for c in grow] == [
        ("add_partitions", 3, None),
        ("alter_config", None, {"retention.ms": "1000"}),
    ]

    shrink = plan_changes([TopicState(spec, 9, {"retention.ms": "1000", "cleanup.policy": "delete"})])
    assert [(c.action, c.actionable) for c in shrink] == [("cannot_shrink", False)]
