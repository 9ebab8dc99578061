"""Train a ticket category head from labelled history: embed, fit, calibrate, measure.

1. Embed every ticket with the local provider's encoder and text construction
   (``query:`` side of ``subject\\ndescription``), in batches.
2. Split off a stratified dev part (``dev_fraction``).
3. Fit scikit-learn's multinomial :class:`~sklearn.linear_model.LogisticRegression`
   on the rest (the embeddings are L2-normalised, so no scaling is needed).
   With ``features="hybrid"``, a second one on the ticket's TF-IDF word and
   character n-grams (:mod:`crmpilot.llm.local.lexical`; vocabulary and idf
   fitted on the same part).
4. Fit a temperature on the dev part's log-loss (:mod:`.calibration`); hybrid:
   fit the weights of the two regressions' logits on it (a two-weight
   temperature scaling), giving their mix and a temperature. The mixed head is
   one linear layer on the embedding followed by the tf-idf.
5. Record dev accuracy, macro-F1, log-loss and ECE before and after scaling,
   the data hash and the parameters in the artefact (:class:`TrainedHead`).
6. With ``refit``, fit the regression(s) again on all examples and keep the
   dev part's temperature and mix (the dev metrics are those of step 5).
7. With ``gate`` (the default), fit the out-of-scope gate on the same split:
   each dev ticket's score is its largest cosine similarity to the fit part's
   embeddings, and the bound is the dev scores' ``1 - gate_pass_rate``
   quantile (by default 95 % of the in-scope dev tickets pass). The gate then
   stores every example's embedding (up to ``gate_max_examples``: beyond, a
   stratified sample, and the dev tickets are then scored against a sample of
   the fit part of the same density), so at inference a ticket is compared
   with all of them. Fewer than ``gate_min_dev`` dev tickets fit no gate.

:func:`fit_head` does steps 2-5 on given vectors, so benchmarks embed once and
fit several heads.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crmpilot.evaluation.calibration import fit_temperature, log_loss
from crmpilot.evaluation.dataset import Dataset
from crmpilot.evaluation.errors import TrainingError
from crmpilot.evaluation.metrics import classification_metrics, reliability
from crmpilot.llm.local.embedder import MODEL_NAME, Encoder, Vectors
from crmpilot.llm.local.lexical import LexicalConfig, LexicalFeatures, analyze
from crmpilot.llm.local.trained import ScopeGate, TrainedHead, categories_for, nearest_similarity
from crmpilot.tasks.taxonomy import DEFAULT_CATEGORIES, Category

__all__ = ["HYBRID", "Features", "Progress", "TrainOptions", "embed_texts", "fit_gate", "fit_head", "train_head"]

Features = Literal["embedding", "hybrid"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each batch."""

TEXT_CONSTRUCTION = "query: subject + '\\n' + description (crmpilot.tasks.local.classify.ticket_text)"


@dataclass(frozen=True, slots=True)
class TrainOptions:
    dev_fraction: float = 0.2
    """Share of the examples held out to fit the temperature and report dev metrics."""
    c: float = 30.0
    """Inverse L2 regularisation strength of the logistic regression. On Banking77 (e5 embeddings,
    2,000 or 9,000 examples) 30 was best of 1/10/30/100/300 by held-out accuracy."""
    seed: int = 0
    max_iter: int = 2000
    batch: int = 64
    """Texts per encoder call."""
    features: Features = "embedding"
    """``embedding``: the e5 embedding only (``crmpilot.head/1``); ``hybrid``: the embedding and
    the ticket's TF-IDF n-grams (``crmpilot.head/2``)."""
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    """Hybrid only: the n-grams (word 1-2 and character 2-5 by default)."""
    min_df: int = 2
    """Hybrid only: a term enters the vocabulary if it occurs in at least this many training tickets."""
    refit: bool = False
    """After the dev part has fixed the temperature (and the hybrid mix), fit the regression(s) again
    on every example, dev part included, and keep that temperature and mix."""
    gate: bool = True
    """Fit the out-of-scope gate (artefact ``crmpilot.head/3``); ``False``: a ``/1`` or ``/2`` head as before."""
    gate_pass_rate: float = 0.95
    """Share of the in-scope dev tickets the gate's bound lets through."""
    gate_max_examples: int = 10_000
    """At most this many training embeddings kept in the gate (a stratified, seeded sample beyond): 15 MB in
    memory, about 1.5 ms a ticket on one core."""
    gate_min_dev: int = 20
    """Fewer dev tickets than this fit no gate (too few to place a bound)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.dev_fraction < 1.0:
            raise TrainingError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")
        if self.c <= 0:
            raise TrainingError(f"C must be positive, got {self.c}")
        if self.features not in ("embedding", "hybrid"):
            raise TrainingError(f"features must be 'embedding' or 'hybrid', got {self.features!r}")
        if self.min_df < 1:
            raise TrainingError("min_df must be at least 1")
        if not 0.0 < self.gate_pass_rate <= 1.0:
            raise TrainingError(f"gate_pass_rate must be in (0, 1], got {self.gate_pass_rate}")
        if self.gate_max_examples < 1 or self.gate_min_dev < 1:
            raise TrainingError("gate_max_examples and gate_min_dev must be at least 1")


HYBRID = TrainOptions(features="hybrid", c=30.0, refit=True)
"""``crmpilot train``'s default: hybrid, C = 30 for both regressions, refitted on all examples.
Chosen on Banking77's dev split (see docs/evaluation.md), never on its test part."""


def embed_texts(
    texts: Sequence[str], encoder: Encoder, *, batch: int = 64, progress: Progress | None = None
) -> Vectors:
    """``query:`` embeddings of ``texts``, ``batch`` at a time."""
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(encoder.encode(list(texts[start : start + batch]), is_query=True))
        if progress is not None:
            progress(min(start + batch, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _split(labels: Sequence[str], fraction: float, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    from sklearn.model_selection import train_test_split

    n, counts = len(labels), Counter(labels)
    rare = sorted(label for label, c in counts.items() if c < 2)
    if rare:
        shown = ", ".join(rare[:10]) + (" …" if len(rare) > 10 else "")
        raise TrainingError(f"each label needs at least 2 examples (one to learn, one to calibrate); too few: {shown}")
    dev = max(len(counts), round(n * fraction))
    if n - dev < len(counts):
        raise TrainingError(f"{n} examples of {len(counts)} labels are too few for a dev split of {fraction:.0%}")
    idx = np.arange(n)
    train, dev_idx = train_test_split(idx, test_size=dev, random_state=seed, stratify=list(labels))
    return np.sort(train), np.sort(dev_idx)


def _fit_lexical(texts: Sequence[str], options: TrainOptions) -> LexicalFeatures:
    """Vocabulary and idf from ``texts`` with scikit-learn, through the analyser inference uses."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    config = options.lexical
    vectorizer = TfidfVectorizer(
        analyzer=lambda text: analyze(text, config),
        lowercase=False,
        sublinear_tf=True,
        min_df=options.min_df,
        dtype=np.float32,
    )
    try:
        vectorizer.fit(list(texts))
    except ValueError as exc:  # e.g. no term reaches min_df
        raise TrainingError(f"no lexical features: {exc}") from exc
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return LexicalFeatures(tuple(vocabulary), vectorizer.idf_, config)


def _tfidf(lexical: LexicalFeatures, texts: Sequence[str]) -> Any:
    """The tf-idf of ``texts`` as a sparse matrix, computed as at inference (:meth:`LexicalFeatures.sparse_rows`)."""
    from scipy.sparse import csr_matrix

    rows = lexical.sparse_rows(texts)
    indptr = np.cumsum([0] + [len(c) for c, _ in rows])
    cols = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    vals = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    return csr_matrix((vals, cols, indptr), shape=(len(rows), lexical.size), dtype=np.float32)


def fit_head(
    vectors: Vectors,
    labels: Sequence[str],
    *,
    encoder: str,
    options: TrainOptions = TrainOptions(),
    categories: tuple[Category, ...] | None = None,
    provenance: dict[str, Any] | None = None,
    texts: Sequence[str] | None = None,
) -> TrainedHead:
    """A calibrated head on ``vectors`` (one row per label); ``encoder`` is the encoder version.

    ``texts``: the tickets ``vectors`` embed, same order; a hybrid head (``options.features``)
    needs them.
    """
    from sklearn import __version__ as sklearn_version

    if len(vectors) != len(labels):
        raise TrainingError(f"{len(vectors)} vectors but {len(labels)} labels")
    hybrid = options.features == "hybrid"
    if hybrid and (texts is None or len(texts) != len(labels)):
        raise TrainingError("a hybrid head needs the ticket texts, one per vector")
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise TrainingError("training needs at least two different labels")
    if categories is not None:
        known = {c.name: c for c in categories}
        if missing := [n for n in names if n not in known]:
            raise TrainingError(f"labels without a category: {', '.join(missing[:10])}")
        ordered = tuple(c for c in categories if c.name in set(names))
    else:
        ordered = categories_for(names, DEFAULT_CATEGORIES)
    order = tuple(c.name for c in ordered)
    column = {name: i for i, name in enumerate(order)}
    y = np.array([column[label] for label in labels], dtype=np.int64)
    train, dev = _split(labels, options.dev_fraction, options.seed)
    dev_texts = [texts[i] for i in dev] if texts is not None else None

    parts, lexical = _fit_parts(vectors, y, train, texts, len(order), options)
    if lexical is None:
        mix: tuple[float, ...] = (1.0,)
        raw = _combine(parts, mix, order, ordered, encoder, lexical)
        temperature = fit_temperature(raw.logits(vectors[dev]), y[dev])
    else:  # the weights of the two logits (embedding, n-grams), fitted on the dev part's log-loss
        dev_logits = (parts[0].logits(vectors[dev]), parts[1].logits(_tfidf(lexical, dev_texts or [])))
        mix, temperature = _fit_mix(dev_logits, y[dev])
        raw = _combine(parts, mix, order, ordered, encoder, lexical)
    head_metrics = _dev_metrics(raw, vectors[dev], y[dev], temperature, dev_texts)
    if options.refit:  # the same recipe on every example; mix and temperature stay the dev part's
        parts, lexical = _fit_parts(vectors, y, np.arange(len(labels)), texts, len(order), options)
        raw = _combine(parts, mix, order, ordered, encoder, lexical)
    gate = fit_gate(vectors, labels, train, dev, options) if options.gate else None
    lexical_meta = (
        {
            "features": "hybrid",
            "min_df": options.min_df,
            "terms": lexical.size,
            "mix": {"embedding": mix[0], "lexical": mix[1]},
        }
        if lexical is not None
        else {"features": "embedding"}
    )
    meta = {
        "kind": "logistic_regression",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder_model": MODEL_NAME,
        "text": TEXT_CONSTRUCTION,
        "training": {
            **(provenance or {}),
            "examples": len(labels),
            "train": len(labels) if options.refit else len(train),
            "dev": len(dev),
            "refit": options.refit,
            "labels": len(order),
            "per_label": dict(sorted(Counter(labels).items())),
            "c": options.c,
            **lexical_meta,
            "dev_fraction": options.dev_fraction,
            "seed": options.seed,
            "scikit_learn": sklearn_version,
            "python": platform.python_version(),
        },
        "metrics": {"dev": head_metrics},
    }
    return replace(raw, temperature=temperature, meta=meta, id="", gate=gate)


def fit_gate(
    vectors: Vectors,
    labels: Sequence[str],
    train: npt.NDArray[np.int64],
    dev: npt.NDArray[np.int64],
    options: TrainOptions = TrainOptions(),
) -> ScopeGate | None:
    """The out-of-scope gate of examples ``vectors``: bound from dev vs fit part, bank of every example.

    ``None`` when the dev part has fewer than ``options.gate_min_dev`` tickets.
    """
    if len(dev) < options.gate_min_dev:
        return None
    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    keep, bank = np.arange(len(x)), np.asarray(train)
    if len(keep) > options.gate_max_examples:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(
            keep, train_size=options.gate_max_examples, random_state=options.seed, stratify=list(labels)
        )
        keep = np.sort(keep)
        # the dev tickets meet a bank as dense as the one kept: the same share of the fit part
        share = max(1, round(len(bank) * options.gate_max_examples / len(x)))
        bank = np.sort(np.random.default_rng(options.seed).choice(bank, size=share, replace=False))
    scores = nearest_similarity(x[dev], x[bank])
    bound = float(np.quantile(scores, 1.0 - options.gate_pass_rate, method="lower"))
    rates = (0.8, 0.9, 0.95, 0.975, 0.99)
    meta = {
        "pass_rate": options.gate_pass_rate,
        "fitted_on": "dev split: each dev ticket's nearest fit-part example",
        "dev": {
            "n": len(dev),
            "pass_rate": float(np.mean(scores >= bound)),
            "score_median": float(np.median(scores)),
            "bound_by_pass_rate": {f"{r:g}": float(np.quantile(scores, 1.0 - r, method="lower")) for r in rates},
        },
        "bank": "every training example"
        if len(keep) == len(x)
        else f"stratified sample of {len(keep)} of {len(x)} examples",
    }
    return ScopeGate.of(x[keep], bound, meta)


@dataclass(frozen=True, slots=True)
class _Linear:
    weights: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]

    def logits(self, x: Any) -> npt.NDArray[np.float64]:
        return np.asarray(x @ self.weights.T + self.bias)


def _fit_linear(x: Any, y: npt.NDArray[np.int64], n_labels: int, options: TrainOptions) -> _Linear:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=options.c, max_iter=options.max_iter)
    model.fit(x, y)
    if len(model.classes_) != n_labels:
        raise TrainingError("every label must appear in the training part")  # stratified: cannot happen
    weights, bias = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    if weights.shape[0] == 1:  # binary: one row z; softmax([-z/2, z/2]) == sigmoid(z), scikit-learn's probability
        weights, bias = np.vstack([-weights, weights]) / 2, np.concatenate([-bias, bias]) / 2
    return _Linear(weights, bias)


def _fit_parts(
    vectors: Vectors,
    y: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    texts: Sequence[str] | None,
    n_labels: int,
    options: TrainOptions,
) -> tuple[tuple[_Linear, ...], LexicalFeatures | None]:
    """The logistic regression(s) on examples ``ids``: on the embeddings, and (hybrid) on the tf-idf."""
    embedding = _fit_linear(vectors[ids], y[ids], n_labels, options)
    if options.features != "hybrid":
        return (embedding,), None
    part = [texts[i] for i in ids] if texts is not None else []
    lexical = _fit_lexical(part, options)
    return (embedding, _fit_linear(_tfidf(lexical, part), y[ids], n_labels, options)), lexical


def _fit_mix(logits: tuple[npt.NDArray[np.float64], ...], y: npt.NDArray[np.int64]) -> tuple[tuple[float, ...], float]:
    """Weights ``w`` minimising the log-loss of ``softmax(sum w_i z_i)``, as a mix summing to 1 and a temperature.

    A two-weight temperature scaling: ``T = 1 / sum w``, ``mix = w * T``.
    """
    from scipy.optimize import minimize

    def loss(log_w: npt.NDArray[np.float64]) -> float:
        return log_loss(sum(np.exp(a) * z for a, z in zip(log_w, logits, strict=True)), y)

    start = np.full(len(logits), np.log(1.0 / len(logits)))
    result = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000})
    w = np.clip(np.exp(result.x if loss(result.x) <= loss(start) else start), 1e-6, None)
    temperature = float(np.clip(1.0 / w.sum(), 0.05, 20.0))
    return tuple(float(v) for v in w / w.sum()), temperature


def _combine(
    parts: tuple[_Linear, ...],
    mix: tuple[float, ...],
    order: tuple[str, ...],
    categories: tuple[Category, ...],
    encoder: str,
    lexical: LexicalFeatures | None,
) -> TrainedHead:
    """One linear layer: ``sum mix_i z_i`` is linear in the embedding followed by the tf-idf."""
    weights = np.hstack([m * p.weights for m, p in zip(mix, parts, strict=True)]).astype(np.float32)
    bias = np.asarray(sum(m * p.bias for m, p in zip(mix, parts, strict=True)), dtype=np.float32)
    return TrainedHead(
        labels=order,
        weights=weights,
        bias=bias,
        temperature=1.0,
        encoder=encoder,
        categories=categories,
        lexical=lexical,
    )


def _dev_metrics(
    raw: TrainedHead, vectors: Vectors, y: npt.NDArray[np.int64], temperature: float, texts: Sequence[str] | None
) -> dict[str, float]:
    logits = raw.logits(vectors, texts)
    before = raw.predict_proba(vectors, texts)
    after = raw.with_temperature(temperature).predict_proba(vectors, texts)
    predicted = before.argmax(axis=1)
    correct = predicted == y
    gold = [raw.labels[i] for i in y]
    guess = [raw.labels[i] for i in predicted]
    quality = classification_metrics(gold, guess)
    return {
        "n": len(y),
        "accuracy": quality.accuracy,
        "macro_f1": quality.macro_f1,
        "temperature": temperature,
        "log_loss_before": log_loss(logits, y, 1.0),
        "log_loss_after": log_loss(logits, y, temperature),
        "ece_before": reliability(before.max(axis=1), correct).ece,
        "ece_after": reliability(after.max(axis=1), correct).ece,
    }


def train_head(
    dataset: Dataset,
    *,
    encoder: Encoder | None = None,
    options: TrainOptions = TrainOptions(),
    categories: tuple[Category, ...] | None = None,
    progress: Progress | None = None,
) -> TrainedHead:
    """Embed ``dataset`` with the local encoder and fit a calibrated head on it."""
    enc = encoder or Encoder()
    vectors = embed_texts([t.text for t in dataset.items], enc, batch=options.batch, progress=progress)
    provenance = {"source": dataset.source, "data_sha256": dataset.sha256, "skipped_rows": dataset.skipped}
    return fit_head(
        vectors,
        [t.label for t in dataset.items],
        encoder=enc.model_version,
        options=options,
        categories=categories,
        provenance=provenance,
        texts=[t.text for t in dataset.items],
    )
