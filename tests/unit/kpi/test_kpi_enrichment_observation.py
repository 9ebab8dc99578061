"""A declared enrichment's results count under its first enum output, from the registry."""

from __future__ import annotations

from pathlib import Path

from crmpilot.enrichments import load_registry
from crmpilot.events import EnrichmentResult, Envelope, result_id_for
from kpi_aggregator.observation import enrichment_dimensions, observe, table_keys
from tests.kpikit import provenance

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "enrichments"


def churn(risk: str) -> Envelope[EnrichmentResult]:
    data = EnrichmentResult(
        result_id=result_id_for("e1", "churn_risk", "v1"),
        task="churn_risk",
        enrichment_version=1,
        review="suggest",
        provenance=provenance("e1"),
        record_id="006X",
        outputs={"churn_risk": risk, "churn_reason": "We may leave."},
        confidence={"churn_risk": 0.7, "churn_reason": 0.9},
        field_review={"churn_risk": "suggest", "churn_reason": "auto_apply"},
    )
    return Envelope[EnrichmentResult](
        source="t", type="ai.enrichment.completed", schemaversion=1, subject="006X", data=data
    )


def test_a_declared_enrichment_counts_under_its_first_enum_output() -> None:
    dims = enrichment_dimensions(load_registry([EXAMPLES]))
    # the built-in score_request beside the examples: by its band (its first enum; risk_flags is a multi-enum)
    assert dims == {"churn_risk": "churn_risk", "ticket_type": "case_type", "score_request": "band"}
    obs = observe(churn("high"), dims)
    assert obs is not None and obs.review == "suggest"
    assert table_keys(obs) == ("churn_risk|all", "churn_risk|churn_risk=high")


def test_an_enrichment_without_a_known_dimension_counts_under_its_total() -> None:
    obs = observe(churn("high"))
    assert obs is not None and table_keys(obs) == ("churn_risk|all",)  # counted once
