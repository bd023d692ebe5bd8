"""Pure decision code: temperature scaling, release gates, the eval pack and its plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.classifier.calibration import fit_temperature, nll_at, softmax
from src.classifier.gates import GateConfig, check_gates
from src.classifier.metrics import classification_summary
from src.classifier.plots import plot_confusion_matrix, plot_reliability_diagram
from src.classifier.report import compute_eval, write_eval

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _calibrated_sample(n: int = 4000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution (T=1 is perfect by construction)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, k))
    p = softmax(z)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z, y


@pytest.mark.parametrize("true_t", [0.4, 1.0, 3.0])
def test_fit_temperature_recovers_the_distortion(true_t: float) -> None:
    z, y = _calibrated_sample()
    logits = z / true_t  # over-confident when true_t < 1; dividing by T = 1/true_t undoes it
    fitted = fit_temperature(logits, y)
    assert fitted == pytest.approx(1.0 / true_t, rel=0.1)
    assert nll_at(logits, y, fitted) <= nll_at(logits, y, 1.0) + 1e-12


def test_fit_temperature_degenerate_inputs() -> None:
    assert fit_temperature(np.zeros((0, 3)), []) == 1.0
    assert fit_temperature(np.zeros((4, 1)), [0, 0, 0, 0]) == 1.0


def _summary(pairs: list[tuple[str, str]], labels: list[str]) -> dict:
    return classification_summary([t for t, _ in pairs], [p for _, p in pairs], labels)


def test_gates_pass_on_good_predictions() -> None:
    pairs = [("a", "a")] * 10 + [("b", "b")] * 10 + [("c", "c")] * 9 + [("c", "a")]
    result = check_gates(_summary(pairs, ["a", "b", "c"]))
    assert result.passed and result.failures == []


def test_gates_fail_and_name_the_failing_class() -> None:
    pairs = [("a", "a")] * 20 + [("b", "b")] * 20 + [("c", "a")] * 4 + [("c", "c")]
    result = check_gates(_summary(pairs, ["a", "b", "c"]))
    assert not result.passed
    assert list(result.failing_classes) == ["c"]
    assert any("'c'" in f for f in result.failures)
    assert not any("accuracy" in f for f in result.failures)  # 41/45 = 0.91 is above 0.70


def test_gates_fail_on_macro_f1_and_accuracy_and_are_configurable() -> None:
    pairs = [("a", "b")] * 6 + [("a", "a")] * 4 + [("b", "b")] * 10
    summary = _summary(pairs, ["a", "b"])
    default = check_gates(summary)
    assert default.passed  # acc 0.70, macro-F1 0.69, per-class 0.57 / 0.77
    strict = check_gates(summary, GateConfig(min_macro_f1=0.9, min_accuracy=0.9, min_per_class_f1=0.6))
    assert not strict.passed
    assert any(f.startswith("macro_f1") for f in strict.failures)
    assert any(f.startswith("accuracy") for f in strict.failures)
    assert set(strict.failing_classes) == {"a"}


def test_gates_ignore_classes_without_support() -> None:
    summary = _summary([("a", "a"), ("b", "b")], ["a", "b", "never_seen"])
    assert "never_seen" not in check_gates(summary, GateConfig(min_macro_f1=0.0)).failing_classes


def test_compute_eval_in_scope_calibration_and_out_of_scope(tmp_path: Path) -> None:
    labels = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    y_in = rng.integers(0, 3, 300)
    logits_in = rng.normal(0, 1, (300, 3))
    logits_in[np.arange(300), y_in] += 4.0  # mostly right, confident
    logits_in *= 3  # and over-confident
    logits_oos = rng.normal(0, 1, (60, 3))  # flat-ish: low confidence
    logits = np.vstack([logits_in, logits_oos])
    y = [labels[i] for i in y_in] + ["oos"] * 60
    t = fit_temperature(logits_in, y_in)
    result, arrays = compute_eval(logits, y, labels, t, threshold=0.85)
    assert result["n_test"] == 300
    assert result["nll_after"] < result["nll_before"]
    assert result["ece_after"] < result["ece_before"]
    oos = result["out_of_scope"]
    assert oos["n"] == 60 and oos["labels"] == {"oos": 60}
    assert oos["auroc_confidence"] > 0.8
    assert 0 <= oos["above_threshold"] <= 60
    assert len(arrays.y_true) == 300
    paths = write_eval(result, arrays, tmp_path / "eval.json", title="synthetic")
    saved = json.loads((tmp_path / "eval.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "ece_before", "ece_after", "n_test", "gates"):
        assert key in saved
    assert "Out-of-scope" in (tmp_path / "eval.md").read_text()
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC


def test_compute_eval_refuses_when_no_label_is_known() -> None:
    with pytest.raises(ValueError, match="none of the"):
        compute_eval(np.zeros((2, 2)), ["x", "y"], ["a", "b"], 1.0)


def test_plots_are_reusable_standalone(tmp_path: Path) -> None:
    cm = plot_confusion_matrix(["a", "b", "b"], ["a", "b", "a"], ["a", "b"], tmp_path / "cm.png", title="t")
    rel = plot_reliability_diagram([0.9, 0.6, 0.3], [True, True, False], tmp_path / "r.png", n_bins=10)
    assert cm.read_bytes()[:8] == PNG_MAGIC and rel.read_bytes()[:8] == PNG_MAGIC


def test_conservative_temperature_does_not_collapse_on_separable_validation() -> None:
    """A perfectly classified val set drives the NLL optimum towards T->0 (confidence 1 for all)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, (1000, 10))
    y = rng.integers(0, 10, 1000)
    logits[np.arange(1000), y] += 8.0
    greedy = fit_temperature(logits, y)
    safe = fit_temperature(logits, y, conservative=True)
    assert greedy < 0.1  # collapsed to the lower bound region
    assert safe > 5 * greedy
    assert nll_at(logits, y, safe) - nll_at(logits, y, greedy) <= 1.92 / 1000 + 1e-9


def test_conservative_temperature_stays_near_optimum_on_ordinary_data() -> None:
    z, y = _calibrated_sample()
    assert fit_temperature(z, y, conservative=True) == pytest.approx(fit_temperature(z, y), rel=0.08)
