"""Fixtures of the CRM integration tests: the in-process CRM sandbox and a throwaway migrated warehouse.

- ``sandbox`` / ``sb`` / ``sf``: from ``tests/integration/sandbox_support.py``.
- ``crm_db``: a database of its own on the local PostgreSQL, migrated, dropped at the end.
- ``warehouse`` / ``watermarks``: the warehouse and the crm_source store on it, tables emptied first.
- ``spec_dir`` / ``registry``: for a module that sets ``SPECS`` (file name -> spec text), a folder of those specs,
  prompts locked, which the module's sandbox serves (it creates the fields they target).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox_support import sandbox, sb, sf  # noqa: F401 - fixtures, imported to be found here

from crmpilot.crm.watermark import PostgresWatermarkStore
from crmpilot.enrichments.registry import Registry, load_registry, lock_prompts
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import PostgresWarehouse, connect
from tests.dbkit import throwaway_database

_TABLES = "warehouse.crm_write_audit, warehouse.feedback, warehouse.crm_source_watermark, warehouse.crm_source_seen"


@pytest.fixture(scope="session")
def crm_db(database_url: str) -> Iterator[DatabaseSettings]:
    with throwaway_database(database_url, "crmpilot_test_crm") as settings:
        yield settings


@pytest.fixture
def warehouse(crm_db: DatabaseSettings) -> Iterator[PostgresWarehouse]:
    with connect(crm_db) as conn:
        conn.execute(f"truncate {_TABLES}")
    with PostgresWarehouse.connect(crm_db, timeout=5) as wh:
        yield wh


@pytest.fixture
def watermarks(crm_db: DatabaseSettings, warehouse: PostgresWarehouse) -> Iterator[PostgresWatermarkStore]:
    store = PostgresWatermarkStore.connect(crm_db, timeout=5)
    yield store
    store.close()


@pytest.fixture(scope="module")
def spec_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    specs: dict[str, str] = request.module.SPECS
    folder = tmp_path_factory.mktemp("specs")
    for name, text in specs.items():
        (folder / name).write_text(text)
    lock_prompts(load_registry([folder]))
    return folder


@pytest.fixture(scope="module", autouse=True)
def _sandbox_serves_the_specs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set before the module's sandbox starts (it reads the specs at start), for a module with ``SPECS``."""
    if not hasattr(request.module, "SPECS"):
        yield
        return
    folder: Path = request.getfixturevalue("spec_dir")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMPILOT_ENRICHMENTS_DIR", str(folder))
        yield


@pytest.fixture(scope="module")
def registry(spec_dir: Path) -> Registry:
    return load_registry([spec_dir])
