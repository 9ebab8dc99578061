"""The faust app is configured from CRMPILOT_KPI_AGGREGATOR_* without connecting anywhere."""

from __future__ import annotations

import pytest

from crmpilot.settings import KafkaSettings
from crmpilot.warehouse.kpi import InMemoryKpiStore
from kpi_aggregator.app import build_app
from kpi_aggregator.bootstrap import UnsupportedKafkaSecurity, bootstrap
from kpi_aggregator.settings import Settings


def test_settings_reach_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMPILOT_KPI_AGGREGATOR_WEB_PORT", "16099")
    monkeypatch.setenv("CRMPILOT_KPI_AGGREGATOR_WINDOW_SIZES_S", "[60, 900]")
    monkeypatch.setenv("CRMPILOT_KPI_AGGREGATOR_APP_ID", "kpi-unit")
    app = build_app(Settings(), broker="kafka://127.0.0.1:9092", partitions=6, store=InMemoryKpiStore(), client_id="c")
    assert (app.conf.id, app.conf.web_bind, app.conf.web_port) == ("kpi-unit", "127.0.0.1", 16099)
    assert (app.conf.topic_replication_factor, app.conf.topic_partitions) == (1, 6)
    assert sorted(app.tables) == ["kpi-60s", "kpi-900s", "kpi-seen-results"]  # the windows, and the result ids counted
    assert [t.window.size for t in app.tables.values() if t.window is not None] == [60, 900]
    assert app.tables["kpi-seen-results"].window is None


def test_bootstrap_needs_no_broker_when_partitions_are_set_and_refuses_unsupported_security() -> None:
    app = bootstrap(Settings(partitions=2), store=InMemoryKpiStore(), kafka=KafkaSettings(bootstrap="h1:9092, h2:9093"))
    assert [str(u) for u in app.conf.broker] == ["kafka://h1:9092", "kafka://h2:9093"]
    with pytest.raises(UnsupportedKafkaSecurity):
        bootstrap(Settings(partitions=2), store=InMemoryKpiStore(), kafka=KafkaSettings(security_protocol="SASL_SSL"))
