"""Temperature scaling (Guo et al. 2017): one scalar that makes softmax confidences honest.

Fitted on validation logits by minimising NLL over ``log T`` (bounded scalar search, so it is
deterministic, cannot diverge and needs no learning rate). Pure numpy: no model in sight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from src.classifier.metrics import negative_log_likelihood, softmax

T_MIN = 0.05
T_MAX = 20.0


def nll_at(logits: np.ndarray, targets: Sequence[int], temperature: float) -> float:
    """Mean negative log-likelihood of ``targets`` at a given temperature."""
    return negative_log_likelihood(softmax(logits, temperature), targets)


def fit_temperature(logits: np.ndarray, targets: Sequence[int], *, conservative: bool = False) -> float:
    """Temperature in [0.05, 20] fitted on validation logits; 1.0 when there is nothing to fit.

    The NLL optimum alone is unsafe when the validation set is (almost) perfectly classified: NLL
    keeps falling as T -> 0, so everything, out-of-scope tickets included, would get confidence ~1.
    With ``conservative`` (``--temperature-rule ci95``) we return the *largest* temperature the data cannot
    reject: the upper end of the 95% profile-likelihood interval (total NLL within 1.92 nats of the
    optimum, i.e. 2*dLL <= 3.84 = chi2(1, 0.95)). On ordinary data that is within a few percent of
    the optimum; on separable data it stops the collapse towards T=0.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) == 0 or logits.shape[1] < 2:
        return 1.0
    y = np.asarray(targets, dtype=int)
    lo, hi = np.log(T_MIN), np.log(T_MAX)
    res = minimize_scalar(
        lambda log_t: nll_at(logits, y, float(np.exp(log_t))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-4},
    )
    best_log_t = float(res.x)
    best = nll_at(logits, y, float(np.exp(best_log_t)))
    if not conservative:
        return float(np.exp(best_log_t)) if best <= nll_at(logits, y, 1.0) else 1.0
    # NLL is convex in 1/T, so above the optimum it only rises: bisect for the CI's upper end.
    limit = best + 1.92 / len(y)
    if nll_at(logits, y, float(np.exp(hi))) <= limit:
        return T_MAX
    a, b = best_log_t, hi
    for _ in range(60):
        mid = (a + b) / 2
        if nll_at(logits, y, float(np.exp(mid))) <= limit:
            a = mid
        else:
            b = mid
    return float(np.exp(a))
