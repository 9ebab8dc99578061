"""Metrics on hand-made cases: accuracy, macro-F1, per-class P/R, confusions, reliability bins, ECE."""

from __future__ import annotations

import pytest

from crmpilot.evaluation.metrics import (
    classification_metrics,
    distribution,
    expected_calibration_error,
    reliability,
    selective,
)


def test_accuracy_macro_f1_and_per_class_by_hand() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(gold, pred)
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    by = {c.label: c for c in m.per_class}
    # a: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8
    assert (by["a"].precision, by["a"].recall, by["a"].f1) == pytest.approx((1.0, 2 / 3, 0.8))
    # b: tp 1, fp 1, fn 1 -> P 0.5, R 0.5, F1 0.5
    assert (by["b"].precision, by["b"].recall, by["b"].f1) == pytest.approx((0.5, 0.5, 0.5))
    # c: tp 1, fp 1, fn 0 -> P 0.5, R 1, F1 2/3
    assert (by["c"].precision, by["c"].recall, by["c"].f1) == pytest.approx((0.5, 1.0, 2 / 3))
    assert m.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert [(c.support, c.predicted) for c in m.per_class] == [(3, 2), (2, 2), (1, 2)]
    assert [(c.gold, c.predicted, c.count) for c in m.top_confusions] == [("a", "b", 1), ("b", "c", 1)]


def test_a_failed_item_counts_as_wrong_and_is_no_class() -> None:
    m = classification_metrics(["a", "b"], ["a", "(error)"])
    assert m.accuracy == 0.5
    assert [c.label for c in m.per_class] == ["a", "b"]
    assert m.top_confusions[0].predicted == "(error)"


def test_reliability_bins_and_ece_by_hand() -> None:
    conf = [0.95, 0.95, 0.95, 0.95, 0.65, 0.65, 0.05, 1.0]
    ok = [True, True, True, False, True, False, False, True]
    cal = reliability(conf, ok, bins=10)
    assert len(cal.bins) == 10
    counts = [b.count for b in cal.bins]
    assert counts == [1, 0, 0, 0, 0, 0, 2, 0, 0, 5]  # 1.0 falls in the last bin
    top = cal.bins[9]
    assert top.accuracy == pytest.approx(4 / 5) and top.confidence == pytest.approx((0.95 * 4 + 1.0) / 5)
    assert cal.bins[1].accuracy is None and cal.bins[1].confidence is None
    # ECE = 1/8 * |0 - 0.05| + 2/8 * |0.5 - 0.65| + 5/8 * |0.8 - 0.96|
    expected = (1 * 0.05 + 2 * 0.15 + 5 * abs(0.8 - 0.96)) / 8
    assert cal.ece == pytest.approx(expected)
    assert cal.mce == pytest.approx(0.16)
    assert expected_calibration_error(conf, ok) == pytest.approx(expected)


def test_perfect_calibration_has_zero_ece() -> None:
    conf = [0.75] * 4 + [0.25] * 4
    ok = [True, True, True, False, True, False, False, False]
    assert reliability(conf, ok, bins=4).ece == pytest.approx(0.0)


def test_selective_accuracy_and_coverage() -> None:
    s = selective([0.9, 0.85, 0.6, 0.3], [True, False, True, True], (0.5, 0.8, 0.95))
    assert [(x.coverage, x.accuracy, x.n) for x in s] == [
        (0.75, pytest.approx(2 / 3), 3),
        (0.5, 0.5, 2),
        (0.0, None, 0),
    ]


def test_distribution_percentiles() -> None:
    d = distribution(list(range(1, 101)))
    assert d.n == 100 and d.p50 == pytest.approx(50.5) and d.max == 100
    assert d.p95 == pytest.approx(95.05)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        reliability([1.2], [True])
    with pytest.raises(ValueError):
        classification_metrics(["a"], ["a", "b"])
