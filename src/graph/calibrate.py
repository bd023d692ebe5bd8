"""Fit auto-resolve thresholds with a precision guarantee that holds for what the router compares.

    python -m src.graph.calibrate --model models/intent            # the bundle's calibration split
    python -m src.graph.calibrate --model models/intent --data held_out.csv

Training runs this as its last step, so a trained bundle is complete; run it again to recalibrate on
fresh labelled tickets (``--data``). The test split is refused (it is for the final numbers only),
and so is the validation split (it chose the epoch, so its errors are optimistic).

What is tested: the router auto-resolves a ticket only when ``value > threshold``, and ``value`` is
the calibrated probability minus uncalibrated penalties (``src.graph.confidence``), so every
auto-resolved ticket has ``probability > threshold``. Calibration measures exactly that set, on text
preprocessed and PII-masked as at runtime (:mod:`src.classifier.runtime_text`), through the backend
the bundle serves with.

The procedure is a fixed-sequence test (Learn-then-Test, Angelopoulos et al. 2021):

* candidate thresholds are a fixed grid chosen before seeing any data (``threshold_grid``), from
  1 - 1e-5 down to the floor (``TRIAGE_AUTO_THRESHOLD``), tested from the top down;
* at each threshold t, H0 "precision of {probability > t} < target" is rejected when the one-sided
  exact (Clopper–Pearson) lower bound at level 1 - alpha is >= target; the search stops at the first
  threshold where it is not, and keeps the last one that passed;
* the first tested threshold is the highest one with at least max(``--min-support``, n*) calibration
  tickets above it, n* being the fewest that can pass at all (299 for 0.99 at alpha 0.05: n correct
  out of n has the lower bound alpha^(1/n)). A rule on counts, never on correctness; sets grow as t
  falls, so it only skips the top of the grid.

What the 95% holds for (alpha = 0.05): with probability >= 95% over the draw of the calibration split,
the precision of tickets with calibrated probability above the chosen threshold is >= target —
for tickets distributed like the calibration split (in-scope intents of the same data source). It
does not cover out-of-scope tickets, drift, or labels that are wrong in the data; the router's
out-of-distribution guards, caps and penalties exist for those and only remove tickets from the set.
The skipped top of the grid (too few tickets to test) is assumed to be at least as precise as the
target. The temperature is fitted on the same split (one scalar, by likelihood) before the test.

``--scope pooled`` (default): one global threshold for all intents with >= ``--min-support``
calibration predictions (the bound is on all auto-resolved tickets together; per-intent precision and
bounds are reported, not guaranteed). Intents with fewer predictions never auto-resolve.
``--scope per-intent``: one fixed-sequence test per intent, the bound holds for each intent on its
own (a 0.99 bound needs >= 299 correct predictions of that intent: with ~100 per intent, none pass).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from src.classifier.metrics import clopper_pearson_lower, expected_calibration_error, reliability_table

GRID_SIZE = 200
# best out-of-scope AUROC and FPR at 95% TPR on CLINC150 (reports/classifier/RUNS.md)
DEFAULT_OOD_SCORE = "mahalanobis"
# pooled scope: an intent needs this many calibration predictions to share the global threshold (a
# rule on counts only; the bound itself is on all auto-resolved tickets together)
MIN_INTENT_SUPPORT = 5
TOP_EXPONENT = -5.0  # the grid starts at 1 - 1e-5
METHOD = "fixed-sequence test (Learn-then-Test), top-down, one-sided exact Clopper–Pearson"
REFUSED_SPLITS = {
    "test": "the test split is for the final numbers only; calibrating on it would make them optimistic",
    "val": "the validation split chose the training epoch; a bound computed on it would be optimistic",
}


# ----------------------------------------------------------------------------------------- pure rules
def threshold_grid(floor: float, size: int = GRID_SIZE) -> np.ndarray:
    """Fixed candidate thresholds, highest first: ``1 - 10**x`` for x evenly spaced from -5 down to
    ``log10(1 - floor)``. Dense near 1, where calibrated confidences of a good model live."""
    floor = float(min(max(floor, 0.0), 1.0 - 10**TOP_EXPONENT))
    exps = np.linspace(TOP_EXPONENT, np.log10(1.0 - floor), size)
    return np.unique(1.0 - 10.0**exps)[::-1]


def _stats(conf: np.ndarray, hit: np.ndarray, t: float, alpha: float) -> dict[str, Any]:
    sel = conf > t
    n, k = int(sel.sum()), int(hit[sel].sum())
    return {"support": n, "correct": k, "precision": (k / n) if n else None,
            "precision_lb": clopper_pearson_lower(k, n, alpha)}


def fewest_to_pass(target: float, alpha: float) -> int:
    """Smallest n for which n correct out of n can reach the target: alpha^(1/n) >= target
    (299 for 0.99 at alpha 0.05). Below it a test can only fail, so it is not started there."""
    return int(np.ceil(np.log(alpha) / np.log(target) - 1e-9))


def fixed_sequence_threshold(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    target: float,
    alpha: float,
    min_support: int,
    grid: Sequence[float],
) -> dict[str, Any]:
    """Lowest grid threshold reached by the top-down fixed-sequence test (pure). See module docstring.

    The first tested threshold is the highest with at least ``max(min_support, fewest_to_pass)``
    tickets above it: a rule on counts only, so it does not depend on which predictions are right.

    Returns ``{"auto_resolve": t | None, "support", "correct", "precision", "precision_lb"}`` at the
    chosen threshold (``probability > t``), plus ``first_tested``, ``tested`` (how many hypotheses were
    tested) and ``stopped_at`` (the first threshold that failed, None if none did). With no threshold
    passing, the statistics are those at the first tested threshold, or at the lowest one when too few
    tickets allowed any test (how far from the target it is).
    """
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=bool)
    needed = max(min_support, fewest_to_pass(target, alpha))
    chosen: dict[str, Any] | None = None
    first: dict[str, Any] | None = None
    tested, first_t, stopped = 0, None, None
    for t in sorted((float(x) for x in grid), reverse=True):
        row = _stats(conf, hit, t, alpha)
        if row["support"] < needed:
            if tested:  # cannot happen: support only grows as t falls; kept as a guard
                break
            continue
        tested += 1
        if first is None:
            first, first_t = row, t
        if row["precision_lb"] < target:
            stopped = t
            break
        chosen = {**row, "auto_resolve": t}
    base = {"first_tested": first_t, "tested": tested, "stopped_at": stopped}
    if chosen is not None:
        return {**chosen, **base}
    if first is None:  # too few tickets anywhere: show the numbers at the lowest threshold
        first = _stats(conf, hit, min(float(x) for x in grid), alpha) if len(grid) else {
            "support": 0, "correct": 0, "precision": None, "precision_lb": 0.0}
    return {"auto_resolve": None, **first, **base}


def _reliability(conf: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
    return {
        "predicted": len(conf),
        "ece": expected_calibration_error(conf.tolist(), hit.tolist(), n_bins=10) if len(conf) else None,
        "table": reliability_table(conf.tolist(), hit.tolist(), n_bins=10),
    }


def calibrate(
    labels: list[str],
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidences: Sequence[float],
    *,
    target: float = 0.99,
    alpha: float = 0.05,
    min_support: int = 30,
    floor: float = 0.0,
    scope: str = "pooled",
    grid_size: int = GRID_SIZE,
    min_intent_support: int = MIN_INTENT_SUPPORT,
) -> dict[str, Any]:
    """Thresholds per intent (pooled or per-intent scope) + per-class reliability tables (pure).

    Every per-intent row reports support, precision and its lower bound *at that intent's threshold*.
    """
    if scope not in ("pooled", "per-intent"):
        raise ValueError(f"scope must be 'pooled' or 'per-intent', not {scope!r}")
    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    conf = np.asarray(confidences, dtype=float)
    hit = y_true_a == y_pred_a
    grid = threshold_grid(floor, grid_size)
    masks = {label: y_pred_a == label for label in labels}
    per_intent: dict[str, dict[str, Any]] = {}
    result: dict[str, Any] = {
        "method": METHOD, "scope": scope, "target_precision": target, "alpha": alpha,
        "min_support": min_support, "min_intent_support": min_intent_support, "floor": floor,
        "grid": {"size": len(grid), "top": float(grid[0]), "bottom": float(grid[-1])},
        "n": len(conf), "accuracy": float(hit.mean()) if len(hit) else None,
        "ece": expected_calibration_error(conf.tolist(), hit.tolist()) if len(hit) else None,
        "reliability": {label: _reliability(conf[m], hit[m]) for label, m in masks.items()},
    }
    if scope == "per-intent":
        for label, m in masks.items():
            row = fixed_sequence_threshold(conf[m], hit[m], target=target, alpha=alpha,
                                           min_support=min_support, grid=grid)
            if row["auto_resolve"] is not None:
                row["why"] = "ok"
            elif row["tested"] == 0:
                row["why"] = f"only {int(m.sum())} calibration predictions (< {min_support})"
            else:
                row["why"] = "lower bound below the target at the first tested threshold"
            per_intent[label] = row
        return {**result, "per_intent": per_intent, "global_threshold": None, "pooled": None}

    eligible = {label for label, m in masks.items() if int(m.sum()) >= min_intent_support}
    pool = np.isin(y_pred_a, sorted(eligible)) if eligible else np.zeros(len(conf), dtype=bool)
    pooled = fixed_sequence_threshold(conf[pool], hit[pool], target=target, alpha=alpha,
                                      min_support=min_support, grid=grid)
    t = pooled["auto_resolve"]
    at = t if t is not None else (pooled["first_tested"] if pooled["first_tested"] is not None else floor)
    for label, m in masks.items():
        row = _stats(conf[m], hit[m], at, alpha)
        if label not in eligible:
            why = f"only {int(m.sum())} calibration predictions (< {min_intent_support})"
            row.update(auto_resolve=None, why=why)
        elif t is None:
            row.update(auto_resolve=None, why="no global threshold passed the test")
        else:
            row.update(auto_resolve=t, why="ok")
        per_intent[label] = row
    pooled_row = {k: pooled[k] for k in ("support", "correct", "precision", "precision_lb", "first_tested",
                                         "tested", "stopped_at")}
    pooled_row["coverage"] = pooled["support"] / len(conf) if len(conf) and t is not None else 0.0
    pooled_row["eligible_intents"] = len(eligible)
    return {**result, "per_intent": per_intent, "global_threshold": t, "pooled": pooled_row}


def guarantee_text(result: dict[str, Any]) -> str:
    """One plain sentence on what the bound holds for (stored with the thresholds and in reports)."""
    level = f"{100 * (1 - result['alpha']):.0f}%"
    who = ("all auto-resolved tickets together (intents with enough calibration data)"
           if result["scope"] == "pooled" else "each intent separately")
    return (f"With probability >= {level} over the draw of the calibration split, the precision of "
            f"{who} with calibrated probability above the threshold is >= {result['target_precision']}, "
            "for in-scope tickets distributed like the calibration data; out-of-scope tickets and drift "
            "are not covered (the router's guards handle those and only remove tickets).")


def thresholds_for_bundle(result: dict[str, Any], current: dict[str, Any], *,
                          fingerprint: dict[str, str], provenance: dict[str, Any]) -> dict[str, Any]:
    """thresholds.json: source "calibrated", per-intent numbers at their threshold, and provenance."""
    per_intent = {
        label: {
            "auto_resolve": row["auto_resolve"],
            "support": row["support"],
            "precision": None if row["precision"] is None else round(float(row["precision"]), 6),
            "precision_lb": round(float(row["precision_lb"]), 6),
        }
        for label, row in result["per_intent"].items()
    }
    global_t = result.get("global_threshold")
    return {
        "source": "calibrated",
        "ood": result.get("ood"),
        "auto_resolve": max(float(global_t), float(current.get("auto_resolve", 0.85)))
        if global_t is not None else float(current.get("auto_resolve", 0.85)),
        "suggest": current.get("suggest", 0.60),
        "per_intent": per_intent,
        "calibration": {
            "method": result["method"],
            "guarantee": guarantee_text(result),
            "target_precision": result["target_precision"],
            "alpha": result["alpha"],
            "min_support": result["min_support"],
            "min_intent_support": result.get("min_intent_support"),
            "scope": result["scope"],
            "floor": result["floor"],
            "global_threshold": global_t,
            "pooled": result.get("pooled"),
            "n": result["n"],
            "model_fingerprint": fingerprint,
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **provenance,
        },
    }


# ------------------------------------------------------------------------------------------- reports
def _fmt(x: float | None, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _rule_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"- method: {result['method']}; target precision {result['target_precision']}, alpha "
             f"{result['alpha']}, min support {result['min_support']} (per intent "
             f"{result.get('min_intent_support', '-')}), grid {result['grid']['size']} "
             f"thresholds from {result['grid']['top']:.6f} down to {result['grid']['bottom']:.4f} (floor)",
             f"- what holds: {guarantee_text(result)}"]
    pooled = result.get("pooled")
    if result["scope"] != "pooled" or pooled is None:
        return lines
    if result["global_threshold"] is None:
        first = pooled["first_tested"]
        where = "no threshold had enough support" if first is None else (
            f"the first tested threshold {first:.6f} failed: {pooled['correct']}/{pooled['support']} "
            f"correct, lower bound {pooled['precision_lb']:.4f}")
        return [*lines, f"- no global threshold passed ({where}): nothing auto-resolves"]
    return [*lines, f"- global threshold {result['global_threshold']:.6f} ({pooled['tested']} thresholds "
            f"tested, stopped at {_fmt(pooled['stopped_at'], 6)}): {pooled['support']} of {result['n']} "
            f"calibration tickets above it (coverage {pooled['coverage']:.1%}), {pooled['correct']} correct, "
            f"precision {_fmt(pooled['precision'])}, lower bound {pooled['precision_lb']:.4f}"]


def _ood_line(ood: dict[str, Any] | None) -> str:
    if not ood:
        return "- out-of-distribution guard: none (the bundle has no embedding model for it)"
    return (f"- out-of-distribution guard: {ood['score']} <= {ood['max']:.4g} ({ood['tpr']:.0%} of the "
            f"{ood['n']} in-scope calibration tickets pass; tickets above it never auto-resolve)")


def markdown_report(result: dict[str, Any], bundle: str, version: str, *, written: bool = True) -> str:
    state = f"version after update `{version}`" if written else f"version `{version}`; --dry-run: not written"
    lines = [
        "# Auto-resolve thresholds (calibration)",
        "",
        f"- bundle: `{bundle}` ({state})",
        f"- command: `python -m src.graph.calibrate {' '.join(result.get('argv', []))}`".rstrip(),
        f"- calibration data: {result.get('data')}",
        f"- commit: {result.get('commit', 'unknown')}; hardware: {result.get('hardware', 'unknown')}",
        f"- rows: {result['n']} (after runtime preprocessing; {result.get('n_dropped', 0)} rejected by it), "
        f"accuracy {_fmt(result['accuracy'])}, ECE {_fmt(result['ece'])}, temperature "
        f"{_fmt(result.get('temperature'), 4)}",
        *_rule_lines(result),
        _ood_line(result.get("ood")),
        "",
        "Per intent, at that intent's own threshold (`probability > threshold`); per-intent bounds are "
        "descriptive in the pooled scope.",
        "",
        "| intent | threshold | support | correct | precision | precision LB | ECE | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in result["per_intent"].items():
        th = "never" if row["auto_resolve"] is None else f"{row['auto_resolve']:.6f}"
        ece = result["reliability"][label]["ece"]
        lines.append(
            f"| {label} | {th} | {row['support']} | {row['correct']} | {_fmt(row['precision'])} | "
            f"{row['precision_lb']:.4f} | {_fmt(ece)} | {row.get('why', '')} |"
        )
    n_auto = sum(r["auto_resolve"] is not None for r in result["per_intent"].values())
    lines += ["", f"{n_auto} of {len(result['per_intent'])} intents may auto-resolve.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ data + bundle
def held_out(model: Path, data: str | None, part: str) -> tuple[list[str], list[str], str]:
    """(texts, labels, description) of the calibration data; rows overlapping training are removed."""
    from src.classifier.data import DataError, clean_labelled, load_labelled, load_split, overlapping_rows

    if part in REFUSED_SPLITS:
        raise ValueError(f"--split {part} refused: {REFUSED_SPLITS[part]}")
    manifest_path = model / "split_manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else None
    if data is not None:
        df, _ = clean_labelled(load_labelled(data), source=data)
        note = ""
        if manifest is not None:
            overlap = overlapping_rows(df, manifest, ("train", "val"))
            if overlap.any():
                note = f"; {int(overlap.sum())} rows dropped (near twins of training/validation rows)"
                df = df[~overlap]
        return df["text"].tolist(), df["label"].tolist(), f"`{data}` (all rows{note})"
    if manifest is None:
        raise ValueError(f"no --data given and no split manifest at {manifest_path}")
    if not manifest.get(part):
        raise DataError(f"the split manifest has no {part!r} rows (bundle trained before the calibration "
                        "split existed?): retrain, or pass --data FILE with held-out labelled tickets")
    df, description = load_split(model, part)
    return df["text"].tolist(), df["label"].tolist(), description


def calibrate_bundle(
    model: Path,
    texts: Sequence[str],
    y_true: Sequence[str],
    *,
    description: str,
    target: float,
    alpha: float,
    min_support: int,
    floor: float,
    scope: str = "pooled",
    min_intent_support: int = MIN_INTENT_SUPPORT,
    temperature_rule: str | None = None,
    ood_score: str | None = None,
    ood_tpr: float | None = None,
    dry_run: bool = False,
    progress: bool = True,
    settings: Any = None,
) -> tuple[dict[str, Any], str]:
    """Runtime-preprocess ``texts``, score them with the served backend, optionally refit the
    temperature (``temperature_rule`` "nll" | "ci95"), fit thresholds and write both into the bundle.

    ``ood_score`` (e.g. "relative_mahalanobis") also sets the router's out-of-distribution guard: the
    score below which ``ood_tpr`` of these in-scope tickets fall (the rest lose auto-resolve).

    Returns (result, bundle version). Used by the CLI and as the last step of training.
    """
    from tqdm.auto import tqdm

    from src.classifier.bundle import model_fingerprint, update_bundle
    from src.classifier.calibration import fit_temperature
    from src.classifier.inference import IntentClassifier
    from src.classifier.metrics import softmax
    from src.classifier.report import hardware_info
    from src.classifier.runtime_text import runtime_view
    from src.system_info import git_commit

    view = runtime_view(list(texts), settings)
    if not view.texts:
        raise ValueError("no calibration row survives runtime preprocessing")
    labels_true = [y_true[i] for i in view.kept]
    clf = IntentClassifier.load(model)
    known = set(clf.labels)
    unknown = sorted(set(labels_true) - known)
    if unknown:
        raise ValueError(f"calibration labels the model does not know: {unknown[:10]} (calibrate on "
                         "in-scope tickets; out-of-scope ones are measured by src.classifier.evaluate)")
    outs = [clf.outputs(view.texts[i : i + 256])
            for i in tqdm(range(0, len(view.texts), 256), desc="calibration logits", unit="batch",
                          disable=not progress, file=sys.stderr)]
    logits = np.concatenate([np.asarray(lg, dtype=np.float64) for lg, _ in outs])
    embeddings = np.concatenate([em for _, em in outs])
    temperature = clf.temperature
    targets = [clf.labels.index(y) for y in labels_true]
    if temperature_rule is not None:
        temperature = fit_temperature(logits, targets, conservative=temperature_rule == "ci95")
    probs = softmax(logits, temperature)
    pred = [clf.labels[i] for i in probs.argmax(axis=1)]
    result = calibrate(clf.labels, labels_true, pred, probs.max(axis=1).tolist(), target=target, alpha=alpha,
                       min_support=min_support, floor=floor, scope=scope,
                       min_intent_support=min_intent_support)
    hw = hardware_info()
    ood = _ood_guard(clf, logits, embeddings, temperature, ood_score, ood_tpr)
    result.update(data=description, n_dropped=view.n_dropped, temperature=temperature, ood=ood,
                  backend=clf.backend.name, commit=git_commit(),
                  hardware=f"{hw['cpu']} ({hw['cpu_count']} CPUs), Python {hw['python']}")
    version = clf.version
    if not dry_run:
        if temperature_rule is not None:
            version = update_bundle(model, temperature=temperature, calibration_info={
                "fit_on": "calibration", "rule": temperature_rule, "n": len(targets), "data": description})
        from src.classifier.bundle import load_bundle_meta

        meta = load_bundle_meta(model)
        provenance = {"data": description, "bundle_version_before": version, "backend": clf.backend.name,
                      "temperature": temperature, "n_dropped_by_preprocessing": view.n_dropped}
        version = update_bundle(model, thresholds=thresholds_for_bundle(
            result, clf.thresholds, fingerprint=model_fingerprint(meta), provenance=provenance))
    return result, version


def _ood_guard(clf: Any, logits: np.ndarray, embeddings: np.ndarray, temperature: float,
               score: str | None, tpr: float | None) -> dict[str, Any] | None:
    """The out-of-distribution guard's threshold: a quantile of in-scope calibration scores."""
    from src.classifier.ood import OOD_TPR, ood_scores, threshold_at_tpr

    if not score:
        return None
    scores = ood_scores(logits, embeddings, temperature, clf.density)
    if score not in scores:  # a bundle trained without the Gaussian model (--no-ood): no guard
        return None
    tpr = OOD_TPR if tpr is None else tpr
    return {"score": score, "max": threshold_at_tpr(scores[score], tpr), "tpr": tpr,
            "fit_on": "in-scope calibration tickets", "n": len(logits)}


def write_reports(
    result: dict[str, Any], report_dir: Path, bundle: str, version: str, *, written: bool
) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    report = {"bundle": bundle, "bundle_version": version, "guarantee": guarantee_text(result), **result}
    (report_dir / "calibration_thresholds.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    md_path = report_dir / "calibration_thresholds.md"
    md_path.write_text(markdown_report(result, bundle, version, written=written), encoding="utf-8")
    return md_path


def main(argv: list[str] | None = None) -> int:
    from src.config import get_settings

    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m src.graph.calibrate", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, default=settings.model_dir, help="classifier bundle directory")
    p.add_argument("--data", help="labelled held-out file (default: the bundle's frozen calibration split); "
                                  "rows that are near twins of training/validation rows are dropped")
    p.add_argument("--split", default="calibration", choices=["calibration", "val", "test"],
                   help="manifest split when no --data (val and test are refused: see --help text)")
    p.add_argument("--target", type=float, default=settings.calibration_target_precision,
                   help="precision the lower bound must reach")
    p.add_argument("--alpha", type=float, default=0.05, help="one-sided error level of the test")
    p.add_argument("--min-support", type=int, default=settings.calibration_min_support,
                   help="fewest calibration tickets above a threshold (and per intent) to test it")
    p.add_argument("--min-intent-support", type=int, default=MIN_INTENT_SUPPORT,
                   help="pooled scope: fewest calibration predictions of an intent for it to auto-resolve")
    p.add_argument("--floor", type=float, default=settings.auto_threshold,
                   help="no threshold below this (default: TRIAGE_AUTO_THRESHOLD)")
    p.add_argument("--scope", choices=["pooled", "per-intent"], default="pooled",
                   help="where the precision bound must hold: all auto-resolved tickets, or each intent")
    p.add_argument("--fit-temperature", choices=["nll", "ci95"], default=None,
                   help="also refit the temperature on this data before fitting thresholds")
    p.add_argument("--ood-score", default=DEFAULT_OOD_SCORE,
                   choices=["none", "max_softmax", "energy", "mahalanobis", "relative_mahalanobis"],
                   help="score of the router's out-of-distribution guard ('none' to switch it off)")
    p.add_argument("--ood-tpr", type=float, default=None,
                   help="share of in-scope calibration tickets the guard lets through (default 0.95)")
    p.add_argument("--report-dir", type=Path, default=Path("reports"))
    p.add_argument("--dry-run", action="store_true", help="write the report only, leave the bundle unchanged")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not 0 < args.target < 1 or not 0 < args.alpha < 1:
        print("error: --target and --alpha must be in (0, 1)", file=sys.stderr)
        return 2
    if args.min_support < 1 or not 0 <= args.floor < 1:
        print("error: --min-support must be >= 1 and --floor in [0, 1)", file=sys.stderr)
        return 2

    from src.classifier.data import DataError
    from src.classifier.types import BundleError

    try:
        texts, y_true, description = held_out(args.model, args.data, args.split)
        if not texts:
            raise ValueError("the held-out data has no rows")
        result, version = calibrate_bundle(
            args.model, texts, y_true, description=description, target=args.target, alpha=args.alpha,
            min_support=args.min_support, floor=args.floor, scope=args.scope,
            min_intent_support=args.min_intent_support, temperature_rule=args.fit_temperature,
            dry_run=args.dry_run, progress=not args.no_progress,
            ood_score=None if args.ood_score == "none" else args.ood_score, ood_tpr=args.ood_tpr,
        )
    except (BundleError, DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["argv"] = list(sys.argv[1:] if argv is None else argv)
    md_path = write_reports(result, args.report_dir, str(args.model), version, written=not args.dry_run)
    n_auto = sum(r["auto_resolve"] is not None for r in result["per_intent"].values())
    print(f"{n_auto}/{len(result['per_intent'])} intents may auto-resolve (target precision LB "
          f"{args.target}); bundle version {version}; report {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
