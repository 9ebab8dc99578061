"""`apply_topics` and `crmpilot topics` against a real broker: create, idempotent re-run, grow, alter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]  # re-exported without __all__
from typer.testing import CliRunner

from crmpilot.cli.topics import app
from crmpilot.settings import KafkaSettings
from crmpilot.streaming import apply_topics
from crmpilot.streaming.topics import parse_topics

pytestmark = pytest.mark.integration


def _file(base: str, *, partitions: int, retention_ms: int) -> str:
    return f"""
version: 1
topics:
  - name: {base}
    partitions: {partitions}
    retention_ms: {retention_ms}
    dlq: {{partitions: 1}}
"""


@pytest.fixture
def base(kafka_admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("apply")
    yield name
    for future in kafka_admin.delete_topics([name, name + ".dlq"], operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except KafkaException as exc:  # not created because the test failed early
            assert exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, exc


def test_apply_creates_then_is_idempotent_then_grows_and_alters(kafka_admin: AdminClient, base: str) -> None:
    first = apply_topics(kafka_admin, parse_topics(_file(base, partitions=2, retention_ms=60_000)))
    assert sorted((c.topic, c.action) for c in first) == [(base, "create"), (base + ".dlq", "create")]

    assert apply_topics(kafka_admin, parse_topics(_file(base, partitions=2, retention_ms=60_000))) == []

    changed = parse_topics(_file(base, partitions=4, retention_ms=120_000))
    dry = apply_topics(kafka_admin, changed, dry_run=True)
    assert sorted((c.topic, c.action) for c in dry) == [(base, "add_partitions"), (base, "alter_config")]
    assert apply_topics(kafka_admin, changed, dry_run=True) == dry  # dry run changed nothing

    assert apply_topics(kafka_admin, changed) == dry
    meta = kafka_admin.list_topics(timeout=10).topics
    assert len(meta[base].partitions) == 4 and len(meta[base + ".dlq"].partitions) == 1
    (future,) = kafka_admin.describe_configs([ConfigResource(ResourceType.TOPIC, base)]).values()
    assert future.result(timeout=10)["retention.ms"].value == "120000"
    assert apply_topics(kafka_admin, changed) == []

    shrink = apply_topics(kafka_admin, parse_topics(_file(base, partitions=1, retention_ms=120_000)))
    assert [(c.action, c.actionable) for c in shrink] == [("cannot_shrink", False)]


def test_cli_apply_and_list(
    kafka_settings: KafkaSettings, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMPILOT_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    monkeypatch.setenv("CRMPILOT_ENRICHMENTS_BUILTIN", "false")  # the file's topics only, not the built-in spec's
    path = tmp_path / "topics.yaml"
    path.write_text(_file(base, partitions=2, retention_ms=60_000))
    runner = CliRunner()

    dry = runner.invoke(app, ["apply", "--file", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would apply 2 change(s)" in dry.output

    listed = runner.invoke(app, ["list", "--file", str(path), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["status"] for r in json.loads(listed.output)] == ["missing", "missing"]

    applied = runner.invoke(app, ["apply", "--file", str(path)])
    assert applied.exit_code == 0, applied.output
    assert "did apply 2 change(s)" in applied.output

    rows = json.loads(runner.invoke(app, ["list", "--file", str(path), "--json"]).output)
    assert [(r["name"], r["partitions"], r["status"]) for r in rows] == [(base, 2, "ok"), (base + ".dlq", 1, "ok")]
    table = runner.invoke(app, ["list", "--file", str(path)])
    assert base in table.output and "ok" in table.output

    path.write_text(_file(base, partitions=1, retention_ms=60_000))
    shrink = runner.invoke(app, ["apply", "--file", str(path)])
    assert shrink.exit_code == 3 and "cannot_shrink" in shrink.output
