"""Out-of-distribution scores for tickets about something the classifier was never trained on.

A softmax is confidently wrong on text unlike its training data (CLINC150: ~1 in 5 out-of-scope
queries reach 0.85), so the router also looks at how far the ticket's *embedding* is from the
training tickets. Scores here are "higher = more out-of-distribution":

* ``mahalanobis``: min over intents of the Mahalanobis distance of the pooled embedding to the
  intent's training mean, with one shared (Ledoit–Wolf shrunk) covariance (Lee et al. 2018).
* ``relative_mahalanobis``: the same minus the distance to one background Gaussian of all training
  embeddings (Ren et al. 2021), which discounts directions that are far for every ticket.
* ``energy``: ``-T * logsumexp(logits / T)`` (Liu et al. 2020), from the logits alone.
* ``max_softmax``: ``1 - max probability``, the baseline.

The Gaussians are fitted on the training split when the bundle is trained and stored in it
(``ood.safetensors``: means + precision matrices, a few hundred KB); the threshold the router uses
is a quantile of in-scope calibration-split scores (``OOD_TPR`` of them pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from src.classifier.metrics import softmax

SCORES = ("max_softmax", "energy", "mahalanobis", "relative_mahalanobis")
OOD_TPR = 0.95  # share of in-scope calibration tickets below the threshold (the rest lose auto-resolve)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


@dataclass
class GaussianDensity:
    """Class means + shared precision, and a background Gaussian, on L2-normalised embeddings."""

    means: np.ndarray  # [K, d]
    precision: np.ndarray  # [d, d]
    background_mean: np.ndarray  # [d]
    background_precision: np.ndarray  # [d, d]

    @classmethod
    def fit(cls, embeddings: np.ndarray, targets: np.ndarray, n_classes: int) -> GaussianDensity:
        from sklearn.covariance import LedoitWolf

        z = _normalise(embeddings)
        y = np.asarray(targets, dtype=int)
        means = np.stack([z[y == k].mean(axis=0) if (y == k).any() else np.zeros(z.shape[1])
                          for k in range(n_classes)])
        shared = LedoitWolf().fit(z - means[y])
        background = LedoitWolf().fit(z)
        return cls(means, shared.precision_, background.location_, background.precision_)

    @staticmethod
    def _sq_dist(z: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
        diff = z - mean
        return np.einsum("nd,de,ne->n", diff, precision, diff)

    def mahalanobis(self, embeddings: np.ndarray) -> np.ndarray:
        z = _normalise(embeddings)
        zp = z @ self.precision
        # ||z - mu||_P^2 = z'Pz - 2 z'P mu + mu'P mu, for every class at once
        quad = np.einsum("nd,nd->n", zp, z)[:, None] - 2 * zp @ self.means.T
        quad += np.einsum("kd,de,ke->k", self.means, self.precision, self.means)[None, :]
        return quad.min(axis=1)

    def relative_mahalanobis(self, embeddings: np.ndarray) -> np.ndarray:
        z = _normalise(embeddings)
        background = self._sq_dist(z, self.background_mean, self.background_precision)
        return self.mahalanobis(embeddings) - background

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"means": self.means.astype(np.float32), "precision": self.precision.astype(np.float32),
                   "background_mean": self.background_mean.astype(np.float32),
                   "background_precision": self.background_precision.astype(np.float32)}, str(path))

    @classmethod
    def load(cls, path: Path) -> GaussianDensity:
        from safetensors.numpy import load_file

        t = {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}
        return cls(t["means"], t["precision"], t["background_mean"], t["background_precision"])


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Free energy ``-T logsumexp(z / T)``: low for in-scope, high for out-of-scope."""
    return -temperature * logsumexp(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def ood_scores(logits: np.ndarray, embeddings: np.ndarray | None, temperature: float,
               density: GaussianDensity | None) -> dict[str, np.ndarray]:
    """Every available score for a batch (higher = more out-of-distribution)."""
    out = {"max_softmax": 1.0 - softmax(logits, temperature).max(axis=1),
           "energy": energy(logits, temperature)}
    if density is not None and embeddings is not None and len(embeddings):
        out["mahalanobis"] = density.mahalanobis(embeddings)
        out["relative_mahalanobis"] = density.relative_mahalanobis(embeddings)
    return out


def threshold_at_tpr(in_scope_scores: np.ndarray, tpr: float = OOD_TPR) -> float:
    """The score below which ``tpr`` of in-scope tickets fall (higher quantile = fewer false alarms)."""
    return float(np.quantile(np.asarray(in_scope_scores, dtype=np.float64), tpr, method="higher"))


def fpr_at_tpr(in_scope_scores: np.ndarray, oos_scores: np.ndarray, tpr: float = 0.95) -> float | None:
    """Share of out-of-scope tickets *not* flagged when ``tpr`` of in-scope ones pass (lower is better)."""
    if len(in_scope_scores) == 0 or len(oos_scores) == 0:
        return None
    t = threshold_at_tpr(in_scope_scores, tpr)
    return float((np.asarray(oos_scores) <= t).mean())
