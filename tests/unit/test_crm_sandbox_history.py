"""The demo org's history: hundreds of closed cases with final categories, served as the real org would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from crm_sandbox.app import create_app
from crm_sandbox.history import HISTORY_SIZE, history_records
from crm_sandbox.memstore import MemoryStore
from crm_sandbox.seed import demo_records
from crm_sandbox.settings import SandboxSettings
from crmpilot.tasks.taxonomy import category_names

TOKEN = "unit-history-token"
DATA = "/services/data/v59.0"


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = SandboxSettings(session_token=SecretStr(TOKEN), human_session_token=SecretStr("unit-human"))
    with TestClient(create_app(MemoryStore(), settings), base_url="https://testserver") as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def test_the_history_is_hundreds_of_varied_closed_cases_in_every_category_and_four_languages() -> None:
    records = history_records()
    assert len(records) == HISTORY_SIZE >= 400 and len({r[1] for r in records}) == HISTORY_SIZE
    fields = [r[2] for r in records]
    assert {f["Status"] for f in fields} == {"Closed"}
    counts = Counter(f["AI_Category__c"] for f in fields)
    assert set(counts) == set(category_names()) and min(counts.values()) >= 30
    texts = [f"{f['Subject']} {f['Description']}" for f in fields]
    assert len(set(texts)) == len(texts), "no two closed cases say the same thing in the same words"
    scripts = {
        "cyrillic": any("\u0400" <= c <= "\u04ff" for t in texts for c in t),
        "german": any(w in t for t in texts for w in ("Rechnung", "Bestellung", "Konto")),
        "spanish": any(w in t for t in texts for w in ("pedido", "factura", "cuenta")),
    }
    assert all(scripts.values()), scripts
    assert history_records() == records, "seeded: every sandbox holds the same history"


def test_no_open_demo_case_is_in_the_history() -> None:
    history = {(f["Subject"], f["Description"]) for _, _, f in history_records()}
    open_cases = [(r["Subject"], r["Description"]) for kind, _, r in demo_records() if kind == "Case"]
    descriptions = {d for _, d in history}
    assert open_cases and not [c for c in open_cases if c in history or c[1] in descriptions]


def test_seeding_the_history_creates_closed_cases_soql_finds_and_is_idempotent(client: TestClient) -> None:
    assert client.post("/__sandbox/seed", json={"dataset": "demo"}).json()["created"] > 20
    assert client.post("/__sandbox/seed", json={"dataset": "history"}).json()["created"] == HISTORY_SIZE
    assert client.post("/__sandbox/seed", json={"dataset": "history"}).json()["created"] == 0

    def count(where: str) -> int:
        return int(
            client.get(f"{DATA}/query", params={"q": f"SELECT COUNT() FROM Case WHERE {where}"}).json()["totalSize"]
        )

    assert count("IsClosed = true AND AI_Category__c != null") == HISTORY_SIZE
    assert count("IsClosed = false") == sum(1 for kind, _, _ in demo_records() if kind == "Case")
    unknown = client.post("/__sandbox/seed", json={"dataset": "archive"})
    assert unknown.status_code == 400 and "demo, history" in unknown.json()["error"]
