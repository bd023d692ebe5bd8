"""Pure scoring functions shared by training, evaluation, threshold calibration and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax as _softmax
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax(logits / T) in float64 (scipy's stable implementation): the one copy."""
    return _softmax(np.asarray(logits, dtype=np.float64) / float(temperature), axis=1)


def reliability_table(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence and accuracy per non-empty bin."""
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins, first bin includes 0
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        if n == 0:
            continue
        rows.append(
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "count": n,
                "confidence": float(conf[mask].mean()),
                "accuracy": float(hit[mask].mean()),
            }
        )
    return rows


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15
) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over equal-width bins (Guo et al. 2017)."""
    total = len(confidences)
    if total == 0:
        return 0.0
    rows = reliability_table(confidences, correct, n_bins)
    return float(sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows))


def negative_log_likelihood(probs: np.ndarray, targets: Sequence[int]) -> float:
    """Mean NLL of the true class under ``probs`` (rows sum to 1)."""
    p = np.clip(probs[np.arange(len(targets)), np.asarray(targets)], 1e-12, 1.0)
    return float(-np.log(p).mean())


def clopper_pearson(successes: int, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided (1-alpha) binomial interval; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def clopper_pearson_lower(successes: int, trials: int, alpha: float = 0.05) -> float:
    """One-sided (1-alpha) exact lower confidence bound on a proportion: conservative precision floor."""
    if trials <= 0:
        return 0.0
    test = binomtest(int(successes), int(trials), alternative="greater")
    return float(test.proportion_ci(confidence_level=1 - alpha, method="exact").low)


def classification_summary(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support over ``labels``.

    Macro-F1 averages over the labels that occur in ``y_true`` only: a label absent from an external
    test set has no F1 to speak of (scoring it 0 would punish the model for the test set's gaps).
    """
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    supported = [lab for lab, n in zip(labels, s, strict=True) if n > 0]
    macro = f1_score(y_true, y_pred, labels=supported, average="macro", zero_division=0) if supported else 0.0
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(macro),
        "macro_f1_labels": len(supported),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def auroc(scores_positive: Sequence[float], scores_negative: Sequence[float]) -> float | None:
    """AUROC of a score separating positives (e.g. in-scope) from negatives; None if a side is empty."""
    if len(scores_positive) == 0 or len(scores_negative) == 0:
        return None
    y = [1] * len(scores_positive) + [0] * len(scores_negative)
    return float(roc_auc_score(y, list(scores_positive) + list(scores_negative)))


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row divided by log(n_classes): 0 = certain, 1 = uniform."""
    probs = np.atleast_2d(probs)
    n = probs.shape[1]
    if n <= 1:
        return np.zeros(probs.shape[0])
    ent = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    return ent / np.log(n)
