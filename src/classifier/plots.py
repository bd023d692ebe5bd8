"""Confusion-matrix and reliability-diagram PNGs (matplotlib Agg; reused by the benchmark runner)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from src.classifier.metrics import expected_calibration_error, reliability_table  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Lay out, write as PNG (creating folders) and free the figure: plots run in long loops."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrix(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    path: str | Path,
    title: str = "Confusion matrix",
) -> Path:
    """Row-normalised confusion matrix (recall per true class); counts annotated when small."""
    labels = list(labels)
    cm = confusion_matrix(list(y_true), list(y_pred), labels=labels)
    row = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, row, out=np.zeros_like(cm, dtype=float), where=row > 0)
    n = len(labels)
    size = min(max(6.0, 0.32 * n + 3), 40.0)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(n)
    fontsize = 8 if n <= 40 else 5 if n <= 100 else 3
    ax.set_xticks(ticks, labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, labels, fontsize=fontsize)
    if n <= 40:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)


def plot_reliability_diagram(
    confidences: Sequence[float],
    correct: Sequence[bool],
    path: str | Path,
    title: str = "Reliability diagram",
    n_bins: int = 15,
) -> Path:
    """Accuracy vs mean confidence per bin, with the diagonal, bin counts and the ECE in the title."""
    table = reliability_table(confidences, correct, n_bins)
    ece = expected_calibration_error(confidences, correct, n_bins)
    width = 1.0 / n_bins
    fig, (ax, axc) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    if table:
        lows = [r["bin_low"] for r in table]
        ax.bar(lows, [r["accuracy"] for r in table], width=width, align="edge", edgecolor="black",
               alpha=0.75, label="accuracy")
        ax.plot([r["confidence"] for r in table], [r["accuracy"] for r in table], "o", color="red",
                markersize=3, label="mean confidence")
        axc.bar(lows, [r["count"] for r in table], width=width, align="edge", edgecolor="black")
        axc.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {ece:.4f} ({n_bins} bins), n={len(confidences)}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    axc.set_xlabel("confidence")
    axc.set_ylabel("count")
    return save_figure(fig, path)
