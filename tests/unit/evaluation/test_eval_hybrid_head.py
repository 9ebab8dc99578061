"""Hybrid heads (embedding + TF-IDF n-grams): same features in training and inference, a safe artefact."""

from __future__ import annotations

import asyncio
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from eval_testkit import fake_batcher, fake_encoder, rows, write_csv

from crmpilot.evaluation import (
    HYBRID,
    TrainingError,
    TrainOptions,
    fit_head,
    read_labelled,
    train_head,
)
from crmpilot.evaluation.training import _split
from crmpilot.llm.local import LocalProvider, TrainedHead
from crmpilot.llm.local.lexical import LexicalConfig, LexicalFeatures, analyze
from crmpilot.llm.local.trained import FORMAT_HYBRID, HeadArtefactError, load_head
from crmpilot.tasks import classify_ticket_spec

OPTIONS = TrainOptions(features="hybrid", dev_fraction=0.25, c=50.0, min_df=1)
UNSEEN = [
    "My CARD hasn't arrived!!",
    "курс обмена евро",
    "",
    "zzz qqq",
    "top-up failed",
    "  spaced   out  ",
]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedHead, Path]:
    root = tmp_path_factory.mktemp("hybrid")
    head = train_head(
        read_labelled(write_csv(root / "history.csv")),
        encoder=fake_encoder(),
        options=OPTIONS,
    )
    return head, head.save(root / "out")


def test_the_analyser_makes_word_and_character_ngrams() -> None:
    terms = analyze("Card  ARRIVED?", LexicalConfig(word_ngrams=(1, 2), char_ngrams=(3, 3)))
    assert terms[:3] == ["w:card", "w:arrived", "w:card arrived"]
    assert "c: ca" in terms and "c:ed?" in terms and "c:d? " in terms
    assert analyze("I", LexicalConfig(word_ngrams=None, char_ngrams=(2, 5))) == [
        "c: i",
        "c:i ",
        "c: i ",
    ]


def test_inference_features_equal_scikit_learns_tfidf() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [text for text, _ in rows()]
    for config in (
        LexicalConfig(),
        LexicalConfig(char_ngrams=None),
        LexicalConfig(word_ngrams=None, char_ngrams=(1, 3)),
    ):
        reference = TfidfVectorizer(
            analyzer=lambda t, c=config: analyze(t, c),
            lowercase=False,
            sublinear_tf=True,
            min_df=2,
        )
        reference.fit(texts)
        vocabulary = sorted(reference.vocabulary_, key=reference.vocabulary_.__getitem__)
        ours = LexicalFeatures(tuple(vocabulary), reference.idf_, config)
        probe = texts[:5] + UNSEEN
        assert np.allclose(ours.transform(probe), reference.transform(probe).toarray(), atol=1e-6)
        w = np.random.default_rng(0).standard_normal((4, ours.size)).astype(np.float32)
        assert np.allclose(
            ours.dot(probe, np.ascontiguousarray(w.T)),
            ours.transform(probe) @ w.T,
            atol=1e-5,
        )


def test_the_hybrid_head_mixes_scikit_learns_two_regressions(tmp_path: Path) -> None:
    """T = 1: softmax(mix_e * z_embedding + mix_l * z_tfidf), each z from scikit-learn on the same part."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = [t for t, _ in rows()], [label for _, label in rows()]
    vectors = fake_encoder().encode(texts, is_query=True)
    options = TrainOptions(features="hybrid", dev_fraction=0.25, c=20.0, min_df=1, seed=3)
    head = fit_head(vectors, labels, encoder="e", options=options, texts=texts)
    mix = head.meta["training"]["mix"]
    assert mix["embedding"] + mix["lexical"] == pytest.approx(1.0) and head.meta["training"]["refit"] is False

    train, _ = _split(labels, 0.25, 3)
    tfidf = TfidfVectorizer(analyzer=analyze, lowercase=False, sublinear_tf=True, min_df=1)
    tfidf.fit([texts[i] for i in train])
    assert head.lexical is not None and set(head.lexical.vocabulary) == set(tfidf.vocabulary_)
    y = [head.labels.index(labels[i]) for i in train]
    on_embedding = LogisticRegression(C=20.0, max_iter=2000).fit(vectors[train], y)
    on_words = LogisticRegression(C=20.0, max_iter=2000).fit(tfidf.transform([texts[i] for i in train]), y)
    probe = texts + UNSEEN
    z = mix["embedding"] * on_embedding.decision_function(fake_encoder().encode(probe, is_query=True))
    z += mix["lexical"] * on_words.decision_function(tfidf.transform(probe))
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = head.with_temperature(1.0).predict_proba(fake_encoder().encode(probe, is_query=True), probe)
    assert np.allclose(got, expected, atol=1e-4)
    assert head.temperature != 1.0

    refitted = fit_head(vectors, labels, encoder="e", options=replace(options, refit=True), texts=texts)
    assert refitted.temperature == head.temperature and refitted.meta["training"]["mix"] == mix
    assert refitted.meta["metrics"] == head.meta["metrics"] and refitted.id != head.id
    assert refitted.meta["training"]["train"] == len(labels)


def test_round_trip_gives_identical_predictions_and_a_stable_id(
    hybrid: tuple[TrainedHead, Path], tmp_path: Path
) -> None:
    head, folder = hybrid
    doc = json.loads((folder / "head.json").read_text())
    assert doc["format"] == FORMAT_HYBRID and doc["lexical"]["terms"] == head.lexical.size  # type: ignore[union-attr]  # the fixture trains a hybrid head, so lexical is set
    assert doc["training"]["features"] == "hybrid" and doc["id"] == head.id == folder.name
    with np.load(folder / "weights.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"W", "b", "vocabulary", "idf"} and arrays["vocabulary"].dtype.kind == "U"
    loaded = load_head(folder)
    texts = ["where is my card", "my card got stolen", "курс валют", "  "]
    vectors = fake_encoder().encode(texts, is_query=True)
    assert loaded.id == head.id and loaded.lexical is not None and loaded.lexical.vocabulary == head.lexical.vocabulary  # type: ignore[union-attr]  # the fixture trains a hybrid head, so lexical is set
    assert np.array_equal(loaded.predict_proba(vectors, texts), head.predict_proba(vectors, texts))
    assert any(t.endswith(" ") for t in loaded.lexical.vocabulary)  # padded character n-grams survive the unicode array
    with pytest.raises(ValueError, match="texts"):
        loaded.predict_proba(vectors)
    again = train_head(
        read_labelled(write_csv(tmp_path / "h.csv")),
        encoder=fake_encoder(),
        options=OPTIONS,
    )
    assert again.id == head.id
    other = train_head(
        read_labelled(write_csv(tmp_path / "h.csv")),
        encoder=fake_encoder(),
        options=replace(OPTIONS, c=5.0),
    )
    assert other.id != head.id


def _rewrite(folder: Path, **arrays: np.ndarray) -> None:
    with np.load(folder / "weights.npz", allow_pickle=False) as old:
        content = {k: old[k] for k in old.files}
    content.update(arrays)
    np.savez(folder / "weights.npz", **content)


def test_tampered_hybrid_artefacts_are_refused(hybrid: tuple[TrainedHead, Path], tmp_path: Path) -> None:
    head, _ = hybrid
    assert head.lexical is not None
    idf = head.save(tmp_path / "idf")
    _rewrite(idf, idf=head.lexical.idf * 1.5)
    with pytest.raises(HeadArtefactError, match="modified"):
        load_head(idf)
    vocabulary = head.save(tmp_path / "vocabulary")
    swapped = list(head.lexical.vocabulary)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    _rewrite(vocabulary, vocabulary=np.array(swapped, dtype=str))
    with pytest.raises(HeadArtefactError, match="modified"):
        load_head(vocabulary)
    analyser = head.save(tmp_path / "analyser")
    doc = json.loads((analyser / "head.json").read_text())
    doc["lexical"]["char_ngrams"] = [1, 4]
    (analyser / "head.json").write_text(json.dumps(doc))
    with pytest.raises(HeadArtefactError, match="modified"):
        load_head(analyser)
    doc["lexical"]["analyzer"] = "something/else"
    (analyser / "head.json").write_text(json.dumps(doc))
    with pytest.raises(HeadArtefactError, match="incomplete"):
        load_head(analyser)
    pickled = head.save(tmp_path / "pickled")
    with np.load(pickled / "weights.npz", allow_pickle=False) as old:
        content = {k: old[k] for k in old.files}
    content["vocabulary"] = np.array(list(head.lexical.vocabulary), dtype=object)  # needs pickle to load
    np.savez(pickled / "weights.npz", **content)
    with pytest.raises(HeadArtefactError, match="unreadable"):
        load_head(pickled)
    stripped = head.save(tmp_path / "stripped")
    with zipfile.ZipFile(stripped / "weights.npz") as z:
        kept = {name: z.read(name) for name in z.namelist() if not name.startswith(("vocabulary", "idf"))}
    with zipfile.ZipFile(stripped / "weights.npz", "w") as z:
        for name, data in kept.items():
            z.writestr(name, data)
    with pytest.raises(HeadArtefactError, match="vocabulary"):
        load_head(stripped)


def test_the_provider_classifies_with_a_hybrid_head(
    hybrid: tuple[TrainedHead, Path],
) -> None:
    head, folder = hybrid
    provider = LocalProvider(head_path=folder, batcher=fake_batcher())
    spec = classify_ticket_spec(head.categories)

    async def go() -> list[str]:
        payloads = [
            {"subject": "", "description": t, "origin": "Web", "is_vip": False}
            for t in ("my card was stolen", "card has not arrived", "exchange rate")
        ]
        done = await asyncio.gather(*(provider.complete(spec, p) for p in payloads))
        assert all(c.model_version is not None and c.model_version.endswith(head.id) for c in done)
        assert all(c.extra == {"head": head.id} for c in done)
        return [c.output.category for c in done]

    assert asyncio.run(go()) == ["lost_or_stolen_card", "card_arrival", "exchange_rate"]
    aligned = head.aligned([*reversed(head.labels), "other"])
    texts = ["exchange rate"]
    probs = aligned.predict_proba(fake_encoder().encode(texts, is_query=True), texts)[0]
    assert aligned.reads_text and probs[-1] == 0.0 and aligned.labels[int(probs.argmax())] == "exchange_rate"


def test_hybrid_training_needs_the_texts_and_the_default_options_are_hybrid() -> None:
    texts, labels = [t for t, _ in rows()], [label for _, label in rows()]
    vectors = fake_encoder().encode(texts, is_query=True)
    with pytest.raises(TrainingError, match="texts"):
        fit_head(vectors, labels, encoder="e", options=OPTIONS)
    with pytest.raises(TrainingError, match="features"):
        TrainOptions(features="words")  # type: ignore[arg-type]  # an invalid value on purpose
    assert HYBRID.features == "hybrid" and HYBRID.refit
