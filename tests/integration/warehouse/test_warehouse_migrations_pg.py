"""The migration runner against a real PostgreSQL: idempotent, concurrent-safe, strict about edits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest
from typer.testing import CliRunner
from warehouse_samples import make_ticket

from crmpilot.cli.db import app
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import (
    KafkaPosition,
    Migration,
    MigrationChecksumMismatch,
    MigrationFailed,
    PostgresWarehouse,
    WarehouseNotMigrated,
    connect,
    load_migrations,
    migrate,
    status,
)
from crmpilot.warehouse.migrator import ADVISORY_LOCK_KEY

pytestmark = pytest.mark.integration

NewDatabase = Callable[[], DatabaseSettings]
TABLES = ["raw_events", "fact_ticket_classification", "fact_email_summary", "fact_enrichment",
          "crm_write_audit", "feedback", "dlq_log", "schema_migrations", "kpi_window", "crm_source_watermark",
          "crm_source_seen", "erasures", "retention_purges"]  # fmt: skip
VIEWS = ["results", "volume_daily", "ticket_volume_daily", "automation_rate_daily", "crm_write_outcomes_daily",
         "cost_daily", "cost_by_task_model", "override_rate", "confidence_distribution", "dlq_rate_daily",
         "event_to_crm_latency", "event_to_crm_latency_daily"]  # fmt: skip


def _versions(conn: psycopg.Connection) -> list[tuple[int, str]]:
    return conn.execute("select version, checksum from warehouse.schema_migrations order by version").fetchall()


def test_migrate_creates_every_table_and_view_and_a_second_run_is_a_no_op(new_database: NewDatabase) -> None:
    packaged = load_migrations()
    with connect(new_database()) as conn:
        assert migrate(conn) == packaged
        assert migrate(conn) == []
        assert _versions(conn) == [(m.version, m.checksum) for m in packaged]
        for table in TABLES:
            assert conn.execute("select to_regclass(%s)", (f"warehouse.{table}",)).fetchone() != (None,), table
        for view in VIEWS:
            conn.execute(f"select * from bi.{view}").fetchall()  # exists and runs on empty tables
        assert {s.state for s in status(conn)} == {"applied"}


def test_concurrent_migrations_apply_each_migration_once(new_database: NewDatabase) -> None:
    settings = new_database()
    runners = 4
    barrier = threading.Barrier(runners)
    outcomes: list[list[Migration] | BaseException] = []

    def run() -> None:
        with connect(settings) as conn:
            barrier.wait()
            try:
                outcomes.append(migrate(conn))
            except BaseException as exc:  # noqa: BLE001 - collected from the thread and asserted below
                outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(len(o) for o in outcomes if isinstance(o, list)) == [0] * (runners - 1) + [len(load_migrations())]
    with connect(settings) as conn:
        assert len(_versions(conn)) == len(load_migrations())


def test_migrate_waits_while_another_process_holds_the_lock(new_database: NewDatabase) -> None:
    settings = new_database()
    with connect(settings) as holder:
        holder.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        applied: list[Migration] = []

        def run() -> None:
            with connect(settings) as conn:
                applied.extend(migrate(conn))

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive() and applied == []
        holder.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        worker.join(timeout=10)
    assert len(applied) == len(load_migrations())


def test_an_edited_applied_migration_is_refused_and_nothing_else_runs(new_database: NewDatabase) -> None:
    packaged = load_migrations()
    with connect(new_database()) as conn:
        migrate(conn)
        edited = [replace(packaged[0], sql=packaged[0].sql + "\n-- tweak"), *packaged[1:]]
        extra = Migration(99, "extra", "create table warehouse.extra (a int);")
        with pytest.raises(MigrationChecksumMismatch, match="0001_core"):
            migrate(conn, [*edited, extra])
        assert conn.execute("select to_regclass('warehouse.extra')").fetchone() == (None,)
        assert [s.state for s in status(conn, edited)][:1] == ["changed"]


def test_a_failing_migration_is_rolled_back_whole(new_database: NewDatabase) -> None:
    broken = Migration(99, "broken", "create table warehouse.half (a int); select no_such_function();")
    with connect(new_database()) as conn:
        with pytest.raises(MigrationFailed, match="0099_broken"):
            migrate(conn, [*load_migrations(), broken])
        assert conn.execute("select to_regclass('warehouse.half')").fetchone() == (None,)
        assert [v for v, _ in _versions(conn)] == [m.version for m in load_migrations()]


def test_cli_migrate_and_status(new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = new_database()
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", settings.url.get_secret_value())
    runner = CliRunner()
    before = runner.invoke(app, ["status"])
    assert before.exit_code == 0 and "pending" in before.output and "crmpilot db migrate" in before.output
    first = runner.invoke(app, ["migrate"])
    assert first.exit_code == 0 and "applied 0001_core" in first.output
    second = runner.invoke(app, ["migrate"])
    assert second.exit_code == 0 and "already up to date" in second.output
    with connect(settings) as conn:
        conn.execute("update warehouse.schema_migrations set checksum = 'edited' where version = 1")
    changed = runner.invoke(app, ["status"])
    assert changed.exit_code == 1 and "changed" in changed.output
    refused = runner.invoke(app, ["migrate"])
    assert refused.exit_code == 1 and "0001_core" in refused.output


def test_writer_on_an_unmigrated_database_says_to_migrate(new_database: NewDatabase) -> None:
    with PostgresWarehouse.connect(new_database(), timeout=5) as wh:
        with pytest.raises(WarehouseNotMigrated, match="crmpilot db migrate"):
            wh.check()
        with pytest.raises(WarehouseNotMigrated, match="crmpilot db migrate"):
            wh.write_results([(make_ticket("evt-1"), KafkaPosition("ai.ticket.classified", 0, 0))])
