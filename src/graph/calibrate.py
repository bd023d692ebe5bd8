"""Fit per-intent auto-resolve thresholds with a conservative precision guarantee.

    python -m src.graph.calibrate --model models/intent            # the bundle's frozen val split
    python -m src.graph.calibrate --model models/intent --data held_out.csv

Two scopes for the statistical guarantee:

* ``--scope pooled`` (default): the guarantee is on what users care about, the precision of *all*
  auto-resolved tickets. Pick the lowest global threshold such that, after the per-intent checks
  below, the auto-resolved held-out set has a one-sided Clopper–Pearson lower bound on precision of
  at least ``--target`` (default 0.99). Per intent: fewer than ``--min-support`` held-out tickets
  predicted as that intent above the threshold -> ``None`` (not enough evidence: never
  auto-resolves); a point precision below the target -> the intent's threshold is raised until it
  meets it, or ``None`` when it never does.
* ``--scope per-intent``: the bound must hold for every intent on its own. Stricter, and it needs a
  lot of data: a 0.99 lower bound at 95 % confidence needs >= 299 correct predictions in a row per
  intent, so with ~100 held-out rows per intent every intent stays ``None``.

The thresholds (with support and bounds) and a per-class reliability table are written into the
bundle via ``update_bundle`` and into a JSON + Markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from src.classifier.metrics import clopper_pearson_lower, expected_calibration_error, reliability_table


def fit_threshold(
    confidences: Sequence[float], correct: Sequence[bool], *, target: float, alpha: float, min_support: int
) -> dict[str, Any]:
    """Lowest threshold t with CP-lower-bound(precision of conf >= t) >= target (pure).

    Returns ``{"auto_resolve": t | None, "support", "correct", "precision", "precision_lb"}`` for the
    chosen set (or for the most confident set when none qualifies, so the report shows how far off).
    """
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=bool)
    order = np.argsort(-conf, kind="stable")
    conf, hit = conf[order], hit[order]
    best: dict[str, Any] | None = None
    closest: dict[str, Any] = {"support": 0, "correct": 0, "precision": None, "precision_lb": 0.0}
    cum_correct = np.cumsum(hit)
    for i in range(len(conf)):
        if i + 1 < len(conf) and conf[i + 1] == conf[i]:
            continue  # a threshold admits every example with the same confidence
        n, k = i + 1, int(cum_correct[i])
        lb = clopper_pearson_lower(k, n, alpha)
        row = {"support": n, "correct": k, "precision": k / n, "precision_lb": lb}
        if lb > closest["precision_lb"]:
            closest = row
        if n >= min_support and lb >= target:
            best = {**row, "auto_resolve": float(conf[i])}
    if best is None:
        return {"auto_resolve": None, **closest}
    return best


def calibrate(
    labels: list[str],
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidences: Sequence[float],
    *,
    target: float = 0.99,
    alpha: float = 0.05,
    min_support: int = 30,
) -> dict[str, Any]:
    """Per-intent thresholds + per-class reliability tables (pure)."""
    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    conf = np.asarray(confidences, dtype=float)
    per_intent: dict[str, dict[str, Any]] = {}
    reliability: dict[str, Any] = {}
    for label in labels:
        mask = y_pred_a == label
        correct = (y_true_a[mask] == label).tolist()
        per_intent[label] = fit_threshold(
            conf[mask].tolist(), correct, target=target, alpha=alpha, min_support=min_support
        )
        ece = expected_calibration_error(conf[mask].tolist(), correct, n_bins=10) if mask.any() else None
        reliability[label] = {
            "predicted": int(mask.sum()),
            "ece": ece,
            "table": reliability_table(conf[mask].tolist(), correct, n_bins=10),
        }
    correct_all = (y_true_a == y_pred_a).tolist()
    return {
        "target_precision": target,
        "alpha": alpha,
        "min_support": min_support,
        "n": len(y_true_a),
        "accuracy": float(np.mean(correct_all)) if len(correct_all) else None,
        "ece": expected_calibration_error(conf.tolist(), correct_all) if len(correct_all) else None,
        "per_intent": per_intent,
        "reliability": reliability,
    }


def _tighten(
    conf: np.ndarray, hit: np.ndarray, start: float, *, target: float, min_support: int
) -> float | None:
    """Lowest threshold >= ``start`` whose set has point precision >= target and enough support."""
    for t in [start, *np.unique(conf[conf > start])]:
        sel = conf >= t
        n = int(sel.sum())
        if n < min_support:
            return None
        if hit[sel].mean() >= target:
            return float(t)
    return None


def calibrate_pooled(
    labels: list[str],
    y_true: Sequence[str],
    y_pred: Sequence[str],
    confidences: Sequence[float],
    *,
    target: float = 0.99,
    alpha: float = 0.05,
    min_support: int = 30,
    floor: float = 0.0,
) -> dict[str, Any]:
    """Global threshold with a pooled precision bound, plus per-intent evidence checks (pure).

    ``floor`` keeps thresholds at or above the configured auto-resolve cut-off: held-out data is
    in-scope by construction, and out-of-scope tickets in production tend to land in the middle.
    """
    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    conf = np.asarray(confidences, dtype=float)
    correct = y_true_a == y_pred_a
    base = calibrate(labels, y_true, y_pred, confidences, target=target, alpha=alpha, min_support=min_support)
    by_label = {label: y_pred_a == label for label in labels}
    for t in [floor, *np.unique(conf[conf > floor])]:
        per_intent: dict[str, dict[str, Any]] = {}
        auto = np.zeros(len(conf), dtype=bool)
        for label, mask in by_label.items():
            sel = mask & (conf >= t)
            n, k = int(sel.sum()), int(correct[sel].sum())
            row: dict[str, Any] = {
                "support": n, "correct": k, "precision": (k / n) if n else None,
                "precision_lb": clopper_pearson_lower(k, n, alpha),
            }
            thr = None if n < min_support else _tighten(
                conf[mask], correct[mask], float(t), target=target, min_support=min_support
            )
            row["auto_resolve"] = thr
            row["why"] = (
                f"only {n} held-out predictions above the threshold (< {min_support})" if n < min_support
                else "ok" if thr == float(t) else "raised to meet the target" if thr is not None
                else "precision below target at every threshold"
            )
            if thr is not None:
                auto |= mask & (conf >= thr)
            per_intent[label] = row
        n_auto, k_auto = int(auto.sum()), int(correct[auto].sum())
        lb = clopper_pearson_lower(k_auto, n_auto, alpha)
        if n_auto and lb >= target:
            return {
                **base, "scope": "pooled", "global_threshold": float(t), "per_intent": per_intent,
                "pooled": {"support": n_auto, "correct": k_auto, "precision": k_auto / n_auto,
                           "precision_lb": lb, "coverage": n_auto / len(conf)},
            }
    never = {label: {**row, "auto_resolve": None, "why": "no threshold meets the pooled bound"}
             for label, row in base["per_intent"].items()}
    return {**base, "scope": "pooled", "global_threshold": None, "per_intent": never,
            "pooled": {"support": 0, "correct": 0, "precision": None, "precision_lb": 0.0, "coverage": 0.0}}


def thresholds_for_bundle(result: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Bundle thresholds: keep the global cut-offs, replace per_intent (numbers only, None = never)."""
    per_intent = {
        label: {
            "auto_resolve": row["auto_resolve"],
            "support": row["support"],
            "precision_lb": round(float(row["precision_lb"]), 6),
        }
        for label, row in result["per_intent"].items()
    }
    return {
        "auto_resolve": current.get("auto_resolve", 0.85),
        "suggest": current.get("suggest", 0.60),
        "per_intent": per_intent,
        "calibration": {
            "target_precision": result["target_precision"],
            "alpha": result["alpha"],
            "min_support": result["min_support"],
            "scope": result.get("scope", "per-intent"),
            "global_threshold": result.get("global_threshold"),
            "pooled": result.get("pooled"),
            "n": result["n"],
            "data": result.get("data"),
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }


def _rule_lines(result: dict[str, Any]) -> list[str]:
    level = f"one-sided {100 * (1 - result['alpha']):.0f}% Clopper–Pearson lower bound"
    if result.get("scope") != "pooled":
        return [f"- rule (per-intent): lowest threshold with {level} on precision >= "
                f"{result['target_precision']} and >= {result['min_support']} auto-resolved tickets"]
    pooled = result["pooled"]
    lines = [f"- rule (pooled): lowest global threshold whose auto-resolved set has a {level} on precision "
             f">= {result['target_precision']}; an intent needs >= {result['min_support']} held-out "
             "predictions above it (else never auto-resolves) and is raised until its point precision "
             "meets the target"]
    if result.get("global_threshold") is None:
        return [*lines, "- no global threshold meets the bound: nothing auto-resolves"]
    prec = pooled["precision"]
    return [*lines, f"- global threshold {result['global_threshold']:.4f}: {pooled['support']} of "
            f"{result['n']} held-out tickets auto-resolved (coverage {pooled['coverage']:.1%}), "
            f"{pooled['correct']} correct, precision {prec:.4f}, lower bound {pooled['precision_lb']:.4f}"]


def markdown_report(result: dict[str, Any], bundle: str, version: str, *, written: bool = True) -> str:
    state = f"version after update `{version}`" if written else f"version `{version}`; --dry-run: not written"
    lines = [
        "# Per-intent auto-resolve thresholds",
        "",
        f"- bundle: `{bundle}` ({state})",
        f"- command: `python -m src.graph.calibrate {' '.join(result.get('argv', []))}`".rstrip(),
        f"- held-out data: {result.get('data')}",
        f"- hardware: {result.get('hardware', 'unknown')}",
        f"- rows: {result['n']}, accuracy {result['accuracy']:.4f}, ECE {result['ece']:.4f}",
        *_rule_lines(result),
        "",
        "| intent | threshold | auto-resolved | correct | precision | precision LB | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in result["per_intent"].items():
        th = "never" if row["auto_resolve"] is None else f"{row['auto_resolve']:.4f}"
        prec = "-" if row["precision"] is None else f"{row['precision']:.4f}"
        ece = result["reliability"][label]["ece"]
        lines.append(
            f"| {label} | {th} | {row['support']} | {row['correct']} | {prec} | {row['precision_lb']:.4f} | "
            f"{'-' if ece is None else f'{ece:.4f}'} |"
        )
    n_auto = sum(r["auto_resolve"] is not None for r in result["per_intent"].values())
    lines += ["", f"{n_auto} of {len(result['per_intent'])} intents may auto-resolve.", ""]
    return "\n".join(lines)


def _held_out(model: Path, data: str | None, part: str) -> tuple[list[str], list[str], str]:
    import pandas as pd

    from src.classifier.data import clean_labelled, load_labelled, split_from_manifest

    if data is not None:
        df, _ = clean_labelled(load_labelled(data), source=data)
        return df["text"].tolist(), df["label"].tolist(), f"`{data}` (all rows)"
    manifest_path = model / "split_manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"no --data given and no split manifest at {manifest_path}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sources = str(manifest["source"]).split(",")
    raw = pd.concat([load_labelled(s) for s in sources], ignore_index=True)
    df, _ = clean_labelled(raw, source=manifest["source"])
    df = split_from_manifest(df, manifest, part)
    description = f"{part} split of `{manifest['source']}` (frozen manifest)"
    return df["text"].tolist(), df["label"].tolist(), description


def main(argv: list[str] | None = None) -> int:
    from src.config import get_settings

    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m src.graph.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=settings.model_dir, help="classifier bundle directory")
    p.add_argument("--data", help="labelled held-out file (default: the bundle's frozen val split)")
    p.add_argument("--split", default="val", choices=["val", "test"], help="manifest split when no --data")
    p.add_argument("--target", type=float, default=settings.calibration_target_precision)
    p.add_argument("--alpha", type=float, default=0.05, help="one-sided CP bound level (default 0.05)")
    p.add_argument("--min-support", type=int, default=settings.calibration_min_support)
    p.add_argument("--floor", type=float, default=settings.auto_threshold,
                   help="pooled scope: no threshold below this (default: TRIAGE_AUTO_THRESHOLD)")
    p.add_argument("--scope", choices=["pooled", "per-intent"], default="pooled",
                   help="where the precision bound must hold: all auto-resolved tickets, or each intent")
    p.add_argument("--report-dir", type=Path, default=Path("reports"))
    p.add_argument("--dry-run", action="store_true", help="write the report only, leave the bundle unchanged")
    args = p.parse_args(argv)
    if not 0 < args.target < 1 or not 0 < args.alpha < 1:
        print("error: --target and --alpha must be in (0, 1)", file=sys.stderr)
        return 2

    from src.classifier.bundle import update_bundle
    from src.classifier.data import DataError
    from src.classifier.inference import IntentClassifier
    from src.classifier.types import BundleError

    try:
        clf = IntentClassifier.load(args.model)
        texts, y_true, description = _held_out(args.model, args.data, args.split)
    except (BundleError, DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not texts:
        print("error: the held-out data has no rows", file=sys.stderr)
        return 2
    from tqdm import tqdm

    preds = []
    for start in tqdm(range(0, len(texts), 256), desc="predict", unit="batch", file=sys.stderr):
        preds.extend(clf.predict(texts[start : start + 256]))
    y_pred = [pr.label or "" for pr in preds]
    conf = [pr.confidence for pr in preds]
    if args.scope == "pooled":
        result = calibrate_pooled(clf.labels, y_true, y_pred, conf, target=args.target, alpha=args.alpha,
                                  min_support=args.min_support, floor=args.floor)
    else:
        result = calibrate(clf.labels, y_true, y_pred, conf, target=args.target, alpha=args.alpha,
                           min_support=args.min_support)
    result["data"] = description
    result["argv"] = list(sys.argv[1:] if argv is None else argv)
    result["hardware"] = f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"
    version = clf.version
    if not args.dry_run:
        version = update_bundle(args.model, thresholds=thresholds_for_bundle(result, clf.thresholds))
    args.report_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.report_dir / "calibration_thresholds.json"
    md_path = args.report_dir / "calibration_thresholds.md"
    report = {"bundle": str(args.model), "bundle_version": version, **result}
    json_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    markdown = markdown_report(result, str(args.model), version, written=not args.dry_run)
    md_path.write_text(markdown, encoding="utf-8")
    n_auto = sum(r["auto_resolve"] is not None for r in result["per_intent"].values())
    print(f"{n_auto}/{len(clf.labels)} intents may auto-resolve (target precision LB {args.target}); "
          f"bundle version {version}; report {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
