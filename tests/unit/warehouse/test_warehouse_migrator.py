"""The migration runner's file loading and checksum logic, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmpilot.errors import Fatal
from crmpilot.warehouse import AppliedMigration, Migration, MigrationChecksumMismatch, load_migrations, plan

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def applied(m: Migration, checksum: str | None = None) -> AppliedMigration:
    return AppliedMigration(m.version, m.name, checksum or m.checksum, NOW)


def test_packaged_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "core"
    assert "create table warehouse.raw_events" in migrations[0].sql


def test_loads_sql_files_in_version_order_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "0002_second.sql").write_text("select 2;")
    (tmp_path / "0001_first.sql").write_text("select 1;")
    (tmp_path / "README.md").write_text("not a migration")
    assert [(m.version, m.name, m.sql) for m in load_migrations(tmp_path)] == [
        (1, "first", "select 1;"),
        (2, "second", "select 2;"),
    ]


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_refuses_badly_named_sql_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("select 1;")
    with pytest.raises(ValueError, match="NNNN_lowercase_name.sql"):
        load_migrations(tmp_path)


def test_refuses_two_files_with_one_version(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("select 1;")
    (tmp_path / "0001_b.sql").write_text("select 1;")
    with pytest.raises(ValueError, match="share version 0001"):
        load_migrations(tmp_path)


def test_checksum_depends_on_the_sql_but_not_on_line_endings() -> None:
    m = Migration(1, "core", "create table t (a int);\nselect 1;\n")
    assert m.checksum == Migration(1, "core", "create table t (a int);\r\nselect 1;\r\n").checksum
    assert m.checksum != Migration(1, "core", "create table t (a bigint);\nselect 1;\n").checksum
    assert len(m.checksum) == 64


def test_plan_returns_pending_migrations_in_order() -> None:
    m1, m2, m3 = (Migration(v, f"m{v}", f"select {v};") for v in (1, 2, 3))
    assert plan({}, [m1, m2, m3]) == [m1, m2, m3]
    assert plan({1: applied(m1)}, [m1, m2, m3]) == [m2, m3]
    assert plan({1: applied(m1), 2: applied(m2), 3: applied(m3)}, [m1, m2, m3]) == []


def test_plan_refuses_an_edited_applied_migration_and_names_it() -> None:
    m1, m2 = Migration(1, "core", "select 1;"), Migration(2, "views", "select 2;")
    with pytest.raises(MigrationChecksumMismatch, match="0001_core") as caught:
        plan({1: applied(m1, checksum="f" * 64)}, [m1, m2])
    assert isinstance(caught.value, Fatal)


def test_plan_leaves_versions_applied_by_a_newer_release_alone() -> None:
    m1 = Migration(1, "core", "select 1;")
    newer = AppliedMigration(9, "future", "e" * 64, NOW)
    assert plan({1: applied(m1), 9: newer}, [m1]) == []
