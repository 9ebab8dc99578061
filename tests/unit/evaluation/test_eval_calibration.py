"""Temperature scaling and head fitting on synthetic data (no model): lower log-loss, honest confidence."""

from __future__ import annotations

import numpy as np
import pytest

from crmpilot.evaluation import TrainingError, fit_head
from crmpilot.evaluation.calibration import fit_temperature, log_loss
from crmpilot.evaluation.metrics import reliability
from crmpilot.evaluation.training import TrainOptions


def _overconfident(n: int = 2000, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose argmax is right ~70% of the time but whose softmax claims ~99%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    right = rng.random(n) < 0.7
    top = np.where(right, y, (y + rng.integers(1, k, n)) % k)
    logits = rng.normal(0, 0.3, (n, k))
    logits[np.arange(n), top] += 6.0
    return logits, y


def test_temperature_scaling_lowers_log_loss_and_ece_of_an_overconfident_model() -> None:
    logits, y = _overconfident()
    t = fit_temperature(logits[:1000], y[:1000])
    assert t > 1.5  # over-confident: soften
    assert log_loss(logits[1000:], y[1000:], t) < log_loss(logits[1000:], y[1000:], 1.0) - 0.5

    def ece(temp: float) -> float:
        z = logits[1000:] / temp
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return reliability(p.max(1), p.argmax(1) == y[1000:]).ece

    assert ece(t) < 0.05 < ece(1.0)


def test_an_underconfident_model_gets_sharpened() -> None:
    logits, y = _overconfident()
    assert fit_temperature(logits / 20, y) < 1.0


def test_nothing_to_fit_is_temperature_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), []) == 1.0


def _clusters(k: int = 3, per: int = 40, dim: int = 16, seed: int = 1) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    x = np.vstack([c + rng.normal(0, 0.9, (per, dim)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, [f"label_{i}" for i in range(k) for _ in range(per)]


def test_fit_head_learns_separable_clusters_and_records_dev_metrics() -> None:
    x, y = _clusters()
    head = fit_head(x, y, encoder="test-encoder", options=TrainOptions(c=10.0))
    assert head.labels == ("label_0", "label_1", "label_2")
    predicted = [head.labels[i] for i in head.predict_proba(x).argmax(1)]
    assert np.mean([p == g for p, g in zip(predicted, y, strict=True)]) > 0.9
    dev = head.meta["metrics"]["dev"]
    assert dev["n"] == 24 and dev["temperature"] == head.temperature
    assert dev["log_loss_after"] <= dev["log_loss_before"] + 1e-9
    assert head.meta["training"]["train"] == 96 and head.meta["training"]["c"] == 10.0
    assert head.id.startswith("head-") and len(head.id) == len("head-") + 12


def test_fit_head_matches_scikit_learn_probabilities() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _clusters(k=2)
    head = fit_head(x, y, encoder="e", options=TrainOptions(c=3.0, seed=7)).with_temperature(1.0)
    from crmpilot.evaluation.training import _split

    train, _ = _split(y, 0.2, 7)
    ref = LogisticRegression(C=3.0, max_iter=2000).fit(x[train], np.array(y)[train])
    assert np.allclose(head.predict_proba(x), ref.predict_proba(x), atol=1e-4)  # binary: two columns from one row


def test_labels_with_one_example_are_refused_with_their_names() -> None:
    x, y = _clusters()
    y = [*y[:-1], "lonely"]
    with pytest.raises(TrainingError, match="lonely"):
        fit_head(x, y, encoder="e")
    with pytest.raises(TrainingError, match="two different labels"):
        fit_head(x[:5], ["a"] * 5, encoder="e")
