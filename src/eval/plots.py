"""Benchmark figures: per-system confusion matrix + reliability diagram (the classifier's own plotting
functions, reused) and the one chart only the benchmark has, the route mix per system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from src.classifier.plots import (  # noqa: E402
    plot_confusion_matrix,
    plot_reliability_diagram,
    save_figure,
)
from src.eval.types import ROUTES, TicketResult  # noqa: E402

ROUTE_COLOURS = {"auto_resolve": "#2e7d32", "suggest": "#f9a825", "escalate": "#c62828"}


def plot_route_mix(
    shares: Mapping[str, Mapping[str, float]], path: str | Path, title: str = "Route mix"
) -> Path:
    """Stacked horizontal bars: share of auto-resolve / suggest / escalate for each system."""
    systems = list(shares)
    fig, ax = plt.subplots(figsize=(7.5, 0.8 * len(systems) + 1.6))
    left = [0.0] * len(systems)
    for route in ROUTES:
        vals = [float(shares[s].get(route, 0.0)) for s in systems]
        ax.barh(systems, vals, left=left, color=ROUTE_COLOURS[route], label=route, edgecolor="white")
        for i, v in enumerate(vals):
            if v >= 0.06:
                ax.text(left[i] + v / 2, i, f"{v:.0%}", ha="center", va="center", color="white", fontsize=9)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of benchmark tickets")
    ax.set_title(title)
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=3, fontsize=8, frameon=False)
    return save_figure(fig, path)


def system_plots(
    system: str, results: Sequence[TicketResult], labels: Sequence[str], out_dir: Path
) -> dict[str, str]:
    """Confusion matrix (predictions over in-scope data rows; none -> '<none>') and reliability diagram."""
    label_set = set(labels)
    rows = [r for r in results if r.source == "data" and r.label in label_set]
    if not rows:
        return {}
    slug = system.replace("-", "_")
    y_pred = [r.pred if r.pred in label_set else "<none>" for r in rows]
    axis = list(labels) + (["<none>"] if "<none>" in y_pred else [])
    cm = plot_confusion_matrix(
        [r.label for r in rows],
        y_pred,
        axis,
        out_dir / f"confusion_{slug}.png",
        title=f"{system}: confusion matrix",
    )
    rel = plot_reliability_diagram(
        [r.score for r in rows],
        [r.pred == r.label for r in rows],
        out_dir / f"reliability_{slug}.png",
        title=f"{system}: routing confidence",
    )
    return {"confusion_matrix": str(cm), "reliability": str(rel)}
