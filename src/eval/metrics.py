"""Per-system benchmark metrics from finished ticket results (pure; the maths is in classifier.metrics).

Conventions, stated once so the report can quote them:
- classification metrics use the labelled data rows whose label is in the label set;
- auto-resolve precision counts every auto-resolved data row, an out-of-scope row counting as wrong;
- "reaches a human" means route ``suggest`` or ``escalate``; "escalated" means route ``escalate``;
- latency/CPU/cost are per ticket over every row the system saw (data + slice).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from src.classifier.metrics import classification_summary, clopper_pearson, expected_calibration_error
from src.eval.types import OUT_OF_SCOPE_LABELS, ROUTES, TicketResult


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile; None for no values (never a made-up number)."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def route_mix(results: Sequence[TicketResult]) -> dict:
    """Counts and shares of each route."""
    n = len(results)
    counts = {r: sum(1 for x in results if x.route == r) for r in ROUTES}
    return {"n": n, "counts": counts, "shares": {r: (c / n if n else 0.0) for r, c in counts.items()}}


def auto_resolve_precision(results: Sequence[TicketResult], alpha: float = 0.05) -> dict:
    """Correct intents among auto-resolved rows, with an exact Clopper-Pearson (1-alpha) interval."""
    auto = [x for x in results if x.route == "auto_resolve"]
    correct = sum(1 for x in auto if x.pred is not None and x.pred == x.label)
    lo, hi = clopper_pearson(correct, len(auto), alpha)
    return {
        "auto_resolved": len(auto),
        "correct": correct,
        "precision": (correct / len(auto)) if auto else None,
        "ci95": [lo, hi],
    }


def failure_codes(row: TicketResult) -> list[str]:
    """Why a row's route may be a failure's doing: failed steps ("node:kind") or a system error."""
    return [*row.failure_codes, *(["system_error"] if row.error else [])]


def escalation_metrics(results: Sequence[TicketResult], alpha: float = 0.05) -> dict:
    """How the rows that should reach a human were routed; wrongful auto-resolves are the hard failures.

    A row that reached a human while a step failed (an LLM timeout, a system error ...) is counted
    as ``caught_by_failure``, not as ``caught``: a down LLM must not look like a perfect guard.
    """
    should = [x for x in results if x.should_escalate]
    should_not = [x for x in results if not x.should_escalate]
    human = [x for x in should if x.route != "auto_resolve"]
    escalated = sum(1 for x in should if x.route == "escalate")
    wrongful = sum(1 for x in should if x.route == "auto_resolve")
    by_failure = [x for x in human if failure_codes(x)]
    return {
        "n_should_escalate": len(should),
        "human_recall": (len(human) / len(should)) if should else None,
        "escalation_recall": (escalated / len(should)) if should else None,
        "caught": len(human) - len(by_failure),
        "caught_by_failure": len(by_failure),
        "failure_codes": dict(Counter(c for x in by_failure for c in dict.fromkeys(failure_codes(x)))),
        "wrongful_auto_resolves": wrongful,
        "wrongful_ci95": list(clopper_pearson(wrongful, len(should), alpha)),
        "wrongful_auto_resolve_ids": [x.ticket_id for x in should if x.route == "auto_resolve"],
        "n_controls": len(should_not),
        "controls_escalated": sum(1 for x in should_not if x.route == "escalate"),
    }


def usage_metrics(results: Sequence[TicketResult]) -> dict:
    """Latency, CPU-seconds, LLM calls, tokens and cost per ticket."""
    n = len(results)
    lat = [x.latency_s for x in results]

    def per(attr: str) -> float | None:
        return (sum(float(getattr(x, attr)) for x in results) / n) if n else None

    return {
        "n": n,
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "latency_mean_s": per("latency_s"),
        "cpu_s_per_ticket": per("cpu_s"),
        "llm_calls_per_ticket": per("llm_calls"),
        "tokens_in_per_ticket": per("tokens_in"),
        "tokens_out_per_ticket": per("tokens_out"),
        "cost_usd_per_ticket": per("cost_usd"),
        "cost_usd_total": sum(x.cost_usd for x in results),
        # one worker deciding tickets one after another (what a single CPU box sustains per process)
        "throughput_tickets_per_min": (60.0 * n / sum(lat)) if n and sum(lat) > 0 else None,
        "errors": sum(1 for x in results if x.error),
        "rows_with_failed_steps": sum(1 for x in results if x.failure_codes),
    }


def _reason_key(reason: str) -> str | None:
    """A countable form of a routing reason; None for the descriptive ones (base probability, adjustments)."""
    if reason.startswith("calibrated probability") or "(-" in reason or "(+" in reason:
        return None
    if "> auto-resolve threshold" in reason:
        return None  # the number allowed auto-resolve: a cap, listed on its own, is what held it back
    reason = re.sub(r" \(route capped at \w+\)$", "", reason)
    if reason.startswith("failed step -> human:"):
        reason = ":".join(reason.split(":")[:2])  # keep the failed node, drop the message
    return re.sub(r"\d+(\.\d+)?", "#", reason)[:90]


def blocking_reasons(results: Sequence[TicketResult], top: int = 10) -> list[dict]:
    """Why tickets did *not* auto-resolve: share of those tickets carrying each rule/threshold reason."""
    held = [x for x in results if x.route != "auto_resolve"]
    counts: Counter[str] = Counter()
    for x in held:
        counts.update({k for k in (_reason_key(r) for r in x.reasons) if k})
    return [{"reason": k, "tickets": c, "share": c / len(held)} for k, c in counts.most_common(top)]


def path_metrics(results: Sequence[TicketResult]) -> dict | None:
    """How a graph-backed system handled its tickets: who analysed, who drafted, time before the decision."""
    rows = [x for x in results if x.details]
    if not rows:
        return None
    after = [float(x.details.get("after_decision_s") or 0.0) for x in rows]
    decision = [max(0.0, x.latency_s - a) for x, a in zip(rows, after, strict=True)]
    late = [a for a in after if a > 0]
    return {
        "n": len(rows),
        "analysis_source": dict(Counter(str(x.details.get("analysis_source")) for x in rows).most_common()),
        "analysis_uncertain": sum(bool(x.details.get("analysis_uncertain")) for x in rows),
        "draft_source": dict(Counter(str(x.details.get("draft_source")) for x in rows).most_common()),
        "decision_latency_p50_s": percentile(decision, 50),
        "decision_latency_p95_s": percentile(decision, 95),
        "after_decision_tickets": len(late),
        "after_decision_mean_s": (sum(late) / len(late)) if late else None,
    }


def system_metrics(results: Sequence[TicketResult], labels: Sequence[str], n_bins: int = 15) -> dict:
    """The full metric block of one system (see module docstring for what counts where)."""
    label_set = set(labels)
    data = [x for x in results if x.source == "data"]
    in_scope = [x for x in data if x.label in label_set]
    oos = [x for x in data if x.label in OUT_OF_SCOPE_LABELS or x.label not in label_set]
    slice_rows = [x for x in results if x.source == "slice"]

    y_true = [x.label for x in in_scope]
    y_pred = [x.pred if x.pred is not None else "<none>" for x in in_scope]
    # Score the labels that occur (as truth, or as a prediction): on a small --limit sample an intent
    # with no ticket would otherwise enter macro-F1 as a 0 and deflate it.
    scored = [lab for lab in labels if lab in set(y_true) | set(y_pred)]
    summary = classification_summary(y_true, y_pred, scored) if in_scope else None
    correct = [x.pred == x.label for x in in_scope]
    block = {
        "n_data": len(data),
        "n_in_scope": len(in_scope),
        "n_out_of_scope": len(oos),
        "n_slice": len(slice_rows),
        "accuracy": summary["accuracy"] if summary else None,
        "macro_f1": summary["macro_f1"] if summary else None,
        "macro_f1_labels": len(scored),
        "per_class_f1": {k: v["f1"] for k, v in summary["per_class"].items()} if summary else {},
        "no_prediction": sum(1 for x in in_scope if x.pred is None),
        "route_mix": route_mix(data),
        "auto_resolve_rate": route_mix(data)["shares"]["auto_resolve"],
        "auto_resolve_precision": auto_resolve_precision(data),
        "ece": expected_calibration_error([x.score for x in in_scope], correct, n_bins) if in_scope else None,
        "ece_model_confidence": (
            expected_calibration_error([x.confidence for x in in_scope], correct, n_bins)
            if in_scope
            else None
        ),
        "escalation_slice": escalation_metrics(slice_rows),
        "escalation_out_of_scope": escalation_metrics(
            [x.model_copy(update={"should_escalate": True}) for x in oos]
        ),
        "usage": usage_metrics(results),
        "blocking_reasons": blocking_reasons(data),
    }
    paths = path_metrics(results)
    if paths is not None:
        block["paths"] = paths
    return block
