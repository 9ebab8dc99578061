"""Temperature scaling: the one number that makes a classifier's confidences honest.

Given logits ``z`` and true labels of a dev split, find ``T > 0`` minimising the
log-loss of ``softmax(z / T)`` (Guo et al., 2017). ``T`` does not change which
label wins, only how sure the model says it is.

Written here (a bounded scalar minimisation over ``log T`` with scipy, the way
scikit-learn's own ``_TemperatureScaling`` does it) rather than through
``CalibratedClassifierCV(method="temperature")``: that wrapper encodes classes
from the dev labels (so a class absent from a small dev split shifts every
column), refuses classes with fewer dev examples than CV folds, and keeps ``T``
in private objects; few-shot heads hit all three.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["fit_binary_temperature", "fit_temperature", "log_loss"]

_BOUNDS = (-3.0, 3.0)
"""``log T`` search range: T from 0.05 to 20. Bounded because a dev split the model
gets entirely right has its log-loss fall towards 0 as T does: unbounded, every
future answer would claim certainty."""


def _log_softmax(logits: npt.NDArray[np.float64], temperature: float) -> npt.NDArray[np.float64]:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def log_loss(logits: npt.ArrayLike, targets: Sequence[int] | npt.ArrayLike, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``targets`` (column indices) under ``softmax(logits / T)``."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    y = np.asarray(targets, dtype=np.int64).reshape(-1)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"{z.shape[0]} rows of logits but {y.shape[0]} targets")
    return float(-_log_softmax(z, temperature)[np.arange(y.shape[0]), y].mean())


def fit_temperature(logits: npt.ArrayLike, targets: Sequence[int] | npt.ArrayLike) -> float:
    """The temperature minimising dev log-loss (1.0 if there is nothing to fit)."""
    from scipy.optimize import minimize_scalar

    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    y = np.asarray(targets, dtype=np.int64).reshape(-1)
    if y.size == 0 or z.shape[1] < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: log_loss(z, y, float(np.exp(log_t))), bounds=_BOUNDS, method="bounded", options={"xatol": 1e-6}
    )
    t = float(np.exp(result.x))
    return t if log_loss(z, y, t) <= log_loss(z, y, 1.0) else 1.0


def fit_binary_temperature(confidence: Sequence[float], correct: Sequence[bool]) -> float:
    """The temperature ``T`` for which ``sigmoid(logit(p) / T)`` best predicts whether answers were right.

    The softmax fit above on two columns, ``[logit(p), 0]``: the first is "the answer is right".
    """
    p = np.clip(np.asarray(confidence, dtype=np.float64), 1e-6, 1 - 1e-6)
    logits = np.stack([np.log(p / (1 - p)), np.zeros_like(p)], axis=1)
    targets = np.where(np.asarray(correct, dtype=bool), 0, 1)
    return fit_temperature(logits, targets)
