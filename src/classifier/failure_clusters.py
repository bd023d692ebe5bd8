"""Failure clusters: what the misclassified test rows have in common.

The misclassified rows are embedded (the bundle's own pooled, L2-normalised embeddings: what the
model "saw"), grouped by average-linkage agglomerative clustering on cosine distance with a distance
cut (no number of clusters to guess), and each cluster is described by its size, its most common
confused pair (true -> predicted, with its share of the cluster), the representative example (the row
closest to the cluster's centroid) and a few more examples. Large clusters point at a missing intent,
a label definition two intents share, or a phrasing the training data lacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

DISTANCE = 0.35  # cosine distance at which two groups of errors stop merging
MAX_CLUSTERS = 10
EXAMPLES = 3


def failure_clusters(
    texts: Sequence[str],
    y_true: Sequence[str],
    y_pred: Sequence[str],
    embeddings: np.ndarray,
    *,
    distance: float = DISTANCE,
    max_clusters: int = MAX_CLUSTERS,
) -> list[dict]:
    """Clusters of the rows where ``y_true != y_pred``, largest first (``[]`` when nothing is wrong)."""
    wrong = [i for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True)) if t != p]
    if not wrong:
        return []
    x = np.asarray(embeddings, dtype=np.float64)[wrong]
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    if len(wrong) == 1:
        assign = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        assign = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                         linkage="average").fit_predict(x)  # fmt: skip
    clusters = []
    for c in np.unique(assign):
        members = np.flatnonzero(assign == c)
        rows = [wrong[m] for m in members]
        centroid = x[members].mean(axis=0)
        order = members[np.argsort(-(x[members] @ centroid))]
        pairs = Counter((y_true[i], y_pred[i]) for i in rows)
        (true, pred), n_pair = pairs.most_common(1)[0]
        clusters.append({
            "size": len(rows),
            "confused_pair": {"true": true, "predicted": pred, "count": n_pair, "share": n_pair / len(rows)},
            "pairs": [{"true": t, "predicted": p, "count": n} for (t, p), n in pairs.most_common(5)],
            "representative": texts[wrong[order[0]]],
            "examples": [texts[wrong[m]] for m in order[1 : 1 + EXAMPLES]],
        })  # fmt: skip
    clusters.sort(key=lambda c: (-c["size"], c["representative"]))
    return clusters[:max_clusters]


def cluster_lines(clusters: list[dict], n_wrong: int) -> list[str]:
    if not clusters:
        return ["failure clusters: no misclassified test rows"]
    lines = [f"failure clusters ({n_wrong} misclassified test rows, {len(clusters)} largest clusters):"]
    for c in clusters:
        pair = c["confused_pair"]
        lines.append(f"  {c['size']:>4} rows, mostly {pair['true']} -> {pair['predicted']} "
                     f"({pair['share']:.0%}): {c['representative'][:90]!r}")
    return lines


def clusters_markdown(clusters: list[dict], n_wrong: int) -> str:
    if not clusters:
        return "No misclassified test rows.\n"
    lines = [f"{n_wrong} misclassified test rows; the {len(clusters)} largest clusters (embedded with the "
             f"bundle's encoder, average-linkage clustering at cosine distance {DISTANCE}):", "",
             "| size | confused pair (true -> predicted) | share | representative example |",
             "|---|---|---|---|"]  # fmt: skip
    for c in clusters:
        p = c["confused_pair"]
        example = c["representative"].replace("|", "\\|").replace("\n", " ")[:140]
        lines.append(f"| {c['size']} | {p['true']} -> {p['predicted']} | {p['share']:.0%} | {example} |")
    return "\n".join(lines) + "\n"
