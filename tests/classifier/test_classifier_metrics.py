"""Known-answer tests for the metric maths every report and every threshold relies on."""

from __future__ import annotations

import numpy as np
import pytest

from src.classifier.metrics import (
    auroc,
    classification_summary,
    clopper_pearson,
    clopper_pearson_lower,
    expected_calibration_error,
    reliability_table,
    softmax,
)


def test_reliability_table_known_bins() -> None:
    conf = [0.95, 0.95, 0.65, 0.65, 0.65, 0.05, 1.0]
    correct = [True, False, True, True, True, False, True]
    rows = reliability_table(conf, correct, n_bins=10)
    assert [(r["bin_low"], r["count"]) for r in rows] == [
        (0.0, 1), (pytest.approx(0.6), 3), (pytest.approx(0.9), 3)
    ]
    top = rows[-1]  # 0.95, 0.95 and 1.0 (the right edge belongs to the last bin)
    assert top["confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3)
    assert top["accuracy"] == pytest.approx(2 / 3)
    assert rows[1]["accuracy"] == 1.0 and rows[0]["accuracy"] == 0.0


def test_ece_known_value() -> None:
    # bin (0.9, 1]: 2 rows, conf 0.95, acc 0.5 -> gap 0.45; bin (0.6, 0.7]: 3 rows, conf 0.65, acc 1 -> 0.35
    conf = [0.95, 0.95, 0.65, 0.65, 0.65]
    correct = [True, False, True, True, True]
    assert expected_calibration_error(conf, correct, n_bins=10) == pytest.approx(2 / 5 * 0.45 + 3 / 5 * 0.35)
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2, n_bins=10) == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_clopper_pearson_known_values() -> None:
    # closed forms: k = n -> lower = alpha^(1/n) (one-sided); k = 0 -> upper = 1 - (alpha/2)^(1/n)
    assert clopper_pearson_lower(10, 10, 0.05) == pytest.approx(0.05 ** (1 / 10), rel=1e-9)
    assert clopper_pearson_lower(299, 299, 0.05) == pytest.approx(0.990031, abs=1e-6)
    assert clopper_pearson_lower(298, 298, 0.05) < 0.99  # why 299 correct in a row are needed for 0.99
    lo, hi = clopper_pearson(0, 10, 0.05)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    lo, hi = clopper_pearson(7, 10, 0.05)  # published table value: (0.3475, 0.9333)
    assert (lo, hi) == (pytest.approx(0.34755, abs=1e-4), pytest.approx(0.93326, abs=1e-4))
    assert clopper_pearson_lower(0, 10) == 0.0 and clopper_pearson_lower(0, 0) == 0.0
    assert clopper_pearson(3, 0) == (0.0, 1.0)


def test_auroc_known_values() -> None:
    # pairs (pos, neg): 0.9>0.7, 0.9>0.85, 0.8>0.7 win, 0.8<0.85 loses -> 3/4
    assert auroc([0.9, 0.8], [0.7, 0.85]) == pytest.approx(0.75)
    assert auroc([0.5], [0.5]) == pytest.approx(0.5)  # a tie counts half
    assert auroc([1.0, 0.9], [0.1]) == 1.0 and auroc([0.1], [0.9, 1.0]) == 0.0
    assert auroc([], [0.3]) is None


def test_softmax_rows_sum_to_one_and_temperature_softens() -> None:
    p = softmax(np.array([[0.0, np.log(3.0)]]))
    assert p[0].tolist() == pytest.approx([0.25, 0.75])
    assert softmax(np.array([[1000.0, 0.0]]))[0, 0] == pytest.approx(1.0)  # no overflow
    assert softmax(np.array([[0.0, 2.0]]), 2.0)[0, 1] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_macro_f1_averages_only_over_labels_with_support() -> None:
    # an external test set without label "c": c must not count as an F1 of 0
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "a", "b", "b"]
    summary = classification_summary(y_true, y_pred, ["a", "b", "c"])
    assert summary["macro_f1"] == 1.0 and summary["macro_f1_labels"] == 2
    assert summary["per_class"]["c"]["support"] == 0
