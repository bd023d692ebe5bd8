"""Turn logits + gold labels into the evaluation pack: eval.json, eval.md and PNGs.

Shared by training (test split of a fresh model) and ``src.classifier.evaluate`` (any labelled
file against a saved bundle). Gold labels the model does not know (e.g. CLINC150's ``oos``) are
out-of-scope rows: they are excluded from in-scope metrics and used to measure how well the
calibrated confidence separates in-scope from out-of-scope (AUROC) and how many would clear the
auto-resolve threshold. Metric maths lives in :mod:`src.classifier.metrics` (not duplicated here).
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.classifier.gates import GateConfig, check_gates
from src.classifier.metrics import (
    auroc,
    classification_summary,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_table,
    softmax,
)
from src.classifier.plots import plot_confusion_matrix, plot_reliability_diagram
from src.system_info import cpu_model

N_BINS = 15


@dataclass
class EvalArrays:
    """Per-row in-scope outputs kept for plotting (not written to JSON)."""

    y_true: list[str]
    y_pred: list[str]
    conf_before: np.ndarray
    conf_after: np.ndarray


def hardware_info() -> dict:
    """Which machine produced a number (invariant 6: reports say data, model and hardware)."""
    cpu = cpu_model()
    info: dict = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform()}
    info["python"] = platform.python_version()
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return info


def compute_eval(
    logits: np.ndarray,
    y_true: Sequence[str],
    labels: Sequence[str],
    temperature: float,
    *,
    gates: GateConfig | None = None,
    threshold: float = 0.85,
    n_bins: int = N_BINS,
    ood: dict[str, np.ndarray] | None = None,
    guard: dict | None = None,
) -> tuple[dict, EvalArrays]:
    """All metrics for one evaluation set; raises ValueError when no row has a known label.

    ``ood`` maps score names to per-row out-of-distribution scores (higher = further from training);
    ``guard`` is the bundle's router guard ``{"score": name, "max": value}``: out-of-scope rows are
    counted above the auto-resolve threshold with and without it.
    """
    labels = list(labels)
    known = set(labels)
    logits = np.asarray(logits, dtype=np.float64)
    if len(logits) != len(y_true):
        raise ValueError(f"{len(logits)} logit rows for {len(y_true)} labels")
    in_scope = np.array([y in known for y in y_true], dtype=bool)
    if not in_scope.any():
        raise ValueError(
            f"none of the {len(y_true)} rows has a label the model knows; model labels: {labels[:10]}..."
        )
    p_before = softmax(logits, 1.0)
    p_after = softmax(logits, temperature)
    pred_idx = p_after.argmax(axis=1)
    y_pred_all = [labels[i] for i in pred_idx]
    conf_before_all = p_before.max(axis=1)
    conf_after_all = p_after.max(axis=1)

    yt = [y for y, k in zip(y_true, in_scope, strict=True) if k]
    yp = [y for y, k in zip(y_pred_all, in_scope, strict=True) if k]
    targets = [labels.index(y) for y in yt]
    correct = np.array([a == b for a, b in zip(yt, yp, strict=True)])
    cb, ca = conf_before_all[in_scope], conf_after_all[in_scope]

    summary = classification_summary(yt, yp, labels)
    gate = check_gates(summary, gates)
    confused = Counter((t, p) for t, p in zip(yt, yp, strict=True) if t != p).most_common(15)
    above = ca >= threshold
    result: dict = {
        "accuracy": summary["accuracy"],
        "macro_f1": summary["macro_f1"],
        "n_test": int(in_scope.sum()),
        "n_labels": len(labels),
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(cb, correct, n_bins),
        "ece_after": expected_calibration_error(ca, correct, n_bins),
        "nll_before": negative_log_likelihood(p_before[in_scope], targets),
        "nll_after": negative_log_likelihood(p_after[in_scope], targets),
        "n_bins": n_bins,
        "threshold": threshold,
        "in_scope_at_threshold": {
            "coverage": float(above.mean()),
            "accuracy": float(correct[above].mean()) if above.any() else None,
            "n_above": int(above.sum()),
        },
        "gates": gate.to_dict(),
        "per_class": summary["per_class"],
        "top_confusions": [{"true": t, "pred": p, "count": c} for (t, p), c in confused],
        "reliability_before": reliability_table(cb, correct, n_bins),
        "reliability_after": reliability_table(ca, correct, n_bins),
    }
    n_oos = int((~in_scope).sum())
    blocked = np.zeros(len(y_true), dtype=bool)
    if guard and ood and guard.get("score") in ood and guard.get("max") is not None:
        blocked = np.asarray(ood[guard["score"]]) > float(guard["max"])
        result["in_scope_at_threshold"]["n_above_passing_guard"] = int((above & ~blocked[in_scope]).sum())
    if n_oos:
        oos_conf = conf_after_all[~in_scope]
        oos_above = oos_conf >= threshold
        scores = {"max_softmax": 1.0 - conf_after_all, **(ood or {})}
        result["out_of_scope"] = {
            "n": n_oos,
            "labels": dict(Counter(y for y, k in zip(y_true, in_scope, strict=True) if not k)),
            "auroc_confidence": auroc(ca.tolist(), oos_conf.tolist()),
            "above_threshold": int(oos_above.sum()),
            "above_threshold_rate": float(oos_above.mean()),
            "mean_confidence": float(oos_conf.mean()),
            "scores": {name: _ood_metrics(np.asarray(v)[in_scope], np.asarray(v)[~in_scope])
                       for name, v in scores.items()},
        }
        if guard and ood and guard.get("score") in ood:
            passing = oos_above & ~blocked[~in_scope]
            result["out_of_scope"]["guard"] = {
                **guard,
                "above_threshold_passing_guard": int(passing.sum()),
                "above_threshold_passing_guard_rate": float(passing.mean()),
            }
    return result, EvalArrays(yt, yp, cb, ca)


def _ood_metrics(in_scope: np.ndarray, oos: np.ndarray) -> dict:
    """AUROC (in-scope = positive, lower score = more in-scope) and FPR at 95% TPR for one score."""
    from src.classifier.ood import fpr_at_tpr

    return {"auroc": auroc((-in_scope).tolist(), (-oos).tolist()), "fpr_at_95_tpr": fpr_at_tpr(in_scope, oos)}


def write_eval(result: dict, arrays: EvalArrays, json_path: str | Path, *, title: str = "") -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and the PNGs next to it; returns the written paths."""
    json_path = Path(json_path)
    out = json_path.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = json_path.stem
    labels = list(result["per_class"])
    correct = [a == b for a, b in zip(arrays.y_true, arrays.y_pred, strict=True)]
    cm = plot_confusion_matrix(arrays.y_true, arrays.y_pred, labels, out / f"{stem}_confusion_matrix.png",
                               title=f"{title} confusion matrix (n={len(correct)})".strip())
    rel_a = plot_reliability_diagram(arrays.conf_after, correct, out / f"{stem}_reliability.png",
                                     title=f"{title} calibrated (T={result['temperature']:.3f})".strip(),
                                     n_bins=result["n_bins"])
    rel_b = plot_reliability_diagram(arrays.conf_before, correct, out / f"{stem}_reliability_before.png",
                                     title=f"{title} uncalibrated".strip(), n_bins=result["n_bins"])
    result = {**result, "plots": {"confusion_matrix": cm.name, "reliability": rel_a.name,
                                  "reliability_before": rel_b.name}}
    json_path.write_text(json.dumps(result, indent=1, default=_json_default) + "\n", encoding="utf-8")
    md = json_path.with_suffix(".md")
    md.write_text(render_markdown(result, title=title), encoding="utf-8")
    return [json_path, md, cm, rel_a, rel_b]


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _fmt(x: float | None, nd: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def render_markdown(result: dict, title: str = "") -> str:
    """Human-readable eval.md: headline, gates, calibration, OOS, per-class table, confusions."""
    g = result["gates"]
    lines = [f"# Evaluation{': ' + title if title else ''}", ""]
    ctx = result.get("context") or {}
    for key in ("data", "model", "bundle_version", "backend", "command", "commit"):
        if ctx.get(key):
            value = str(ctx[key])
            lines.append(f"- {key}: {value if '`' in value else f'`{value}`'}")
    if ctx.get("hardware"):
        hw = ctx["hardware"]
        lines.append(f"- hardware: {hw.get('cpu')} ({hw.get('cpu_count')} CPUs, torch threads "
                     f"{hw.get('torch_threads')})")
    if "train_seconds" in result:
        lines.append(f"- training wall-clock: {result['train_seconds']:.0f} s")
    lines += [
        "",
        "| metric | value |",
        "|---|---|",
        f"| n (in-scope) | {result['n_test']} |",
        f"| accuracy | {_fmt(result['accuracy'])} |",
        f"| macro-F1 | {_fmt(result['macro_f1'])} |",
        f"| temperature | {_fmt(result['temperature'], 3)} |",
        f"| ECE before / after ({result['n_bins']} bins) | {_fmt(result['ece_before'])} / "
        f"{_fmt(result['ece_after'])} |",
        f"| NLL before / after | {_fmt(result['nll_before'])} / {_fmt(result['nll_after'])} |",
        f"| coverage at confidence >= {result['threshold']:.6g} | "
        f"{_fmt(result['in_scope_at_threshold']['coverage'])} (accuracy "
        f"{_fmt(result['in_scope_at_threshold']['accuracy'])}) |",
        *([f"| ... of which pass the out-of-distribution guard | "
           f"{result['in_scope_at_threshold']['n_above_passing_guard']} of "
           f"{result['in_scope_at_threshold']['n_above']} |"]
          if "n_above_passing_guard" in result["in_scope_at_threshold"] else []),
        "",
        f"**Gates: {'PASS' if g['passed'] else 'FAIL'}** ({g['config']})",
    ]
    lines += [f"- {f}" for f in g["failures"]]
    if "out_of_scope" in result:
        o = result["out_of_scope"]
        lines += [
            "",
            "## Out-of-scope rows",
            f"{o['n']} rows with labels the model does not know ({o['labels']}).",
            f"{o['above_threshold']} out-of-scope rows ({_fmt(o['above_threshold_rate'])}) reach confidence "
            f">= {result['threshold']:.6g} (auto-resolved as some intent unless another guard stops them).",
        ]
        if o.get("guard"):
            g = o["guard"]
            rate = _fmt(g["above_threshold_passing_guard_rate"])
            lines.append(f"With the bundle's out-of-distribution guard ({g['score']} <= {g['max']:.4g}): "
                         f"{g['above_threshold_passing_guard']} ({rate}) still pass.")
        lines += ["", "| score (higher = out of scope) | AUROC | FPR at 95% TPR |", "|---|---|---|"]
        for name, m in (o.get("scores") or {}).items():
            lines.append(f"| {name} | {_fmt(m['auroc'])} | {_fmt(m['fpr_at_95_tpr'])} |")
    if result.get("without_overlap"):
        w = result["without_overlap"]
        rest = (f"; without them: n {w['n_test']}, accuracy {_fmt(w['accuracy'])}, macro-F1 "
                f"{_fmt(w['macro_f1'])}." if "accuracy" in w else ".")
        lines += ["", f"{w['n_overlapping_rows']} rows are near twins of rows the model was trained, "
                  f"validated or calibrated on{rest}"]
    lines += ["", "## Per class", "", "| class | precision | recall | F1 | support |"]
    lines.append("|---|---|---|---|---|")
    for lab, row in sorted(result["per_class"].items(), key=lambda kv: (kv[1]["f1"], kv[0])):
        lines.append(f"| {lab} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['f1'])} | "
                     f"{row['support']} |")
    if result.get("top_confusions"):
        lines += ["", "## Most frequent confusions", "", "| true | predicted | count |", "|---|---|---|"]
        lines += [f"| {c['true']} | {c['pred']} | {c['count']} |" for c in result["top_confusions"]]
    if "plots" in result:
        lines += ["", *[f"![{k}]({v})" for k, v in result["plots"].items()]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ one command
def regenerate(model: Path, out: Path, *, test: str | None = None, bench: bool = True,
               progress: bool = True, log=print) -> list[Path]:
    """Re-create every classifier report of the bundle at ``model`` under ``out``; returns the files.

    eval (test split, or ``test``), calibration (re-computed on the calibration split without touching
    the bundle), model card, serving benchmark, and an index naming bundle version, commit, hardware.
    """
    import shutil

    from src.classifier.bundle import load_bundle_meta
    from src.classifier.data import load_split
    from src.classifier.evaluate import evaluate_bundle
    from src.classifier.model_card import write_model_card
    from src.config import get_settings
    from src.graph.calibrate import DEFAULT_OOD_SCORE, MIN_INTENT_SUPPORT, calibrate_bundle, write_reports
    from src.system_info import git_commit

    meta = load_bundle_meta(model)
    version = meta["bundle_version"]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if test is None:
        frame, description = load_split(model, "test")
        test_path = out / "test_split.csv"
        frame[["text", "label"]].to_csv(test_path, index=False)
    else:
        test_path, description = Path(test), f"`{test}`"
    log(f"eval on {description}")
    evaluate_bundle(model, test_path, out / "eval.json", progress=progress, log=log, data_label=description)
    if test is None:
        test_path.unlink()
    written.append(out / "eval.json")
    settings = get_settings()
    cal, cal_description = load_split(model, "calibration")
    thresholds = json.loads((model / "thresholds.json").read_text(encoding="utf-8"))
    recorded = thresholds.get("calibration") or {}
    result, _ = calibrate_bundle(
        model, cal["text"].tolist(), cal["label"].tolist(), description=cal_description,
        target=recorded.get("target_precision", settings.calibration_target_precision),
        alpha=recorded.get("alpha", 0.05),
        min_support=recorded.get("min_support", settings.calibration_min_support),
        min_intent_support=recorded.get("min_intent_support") or MIN_INTENT_SUPPORT,
        floor=recorded.get("floor", settings.auto_threshold), scope=recorded.get("scope", "pooled"),
        ood_score=(thresholds.get("ood") or {}).get("score", DEFAULT_OOD_SCORE),
        ood_tpr=(thresholds.get("ood") or {}).get("tpr"), dry_run=True, progress=progress, settings=settings,
    )
    result["argv"] = ["--model", str(model), "--dry-run", "(re-computed by src.classifier.report)"]
    written.append(write_reports(result, out, str(model), version, written=False))
    card = write_model_card(model)
    shutil.copy(card, out / card.name)
    written.append(out / card.name)
    if bench:
        from src.classifier.bench import main as bench_main

        bench_main(["--model", str(model), "--json", str(out / "bench.json"), "--no-progress"])
        written.append(out / "bench.json")
    index = out / "README.md"
    hw = hardware_info()
    lines = [f"# Classifier reports for bundle `{version}`", "",
             f"- bundle: `{model}` (version `{version}`, base `{meta['base_model']['id']}`, method "
             f"`{meta.get('method')}`)",
             f"- regenerated by: `python -m src.classifier.report --model {model} --out {out}`",
             f"- commit: {git_commit()}; hardware: {hw['cpu']} ({hw['cpu_count']} CPUs)",
             f"- test data: {description}", "", *[f"- [{p.name}]({p.name})" for p in written], ""]
    index.write_text("\n".join(lines), encoding="utf-8")
    return [*written, index]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from src.classifier.data import DataError
    from src.classifier.types import BundleError
    from src.config import get_settings

    p = argparse.ArgumentParser(prog="python -m src.classifier.report",
                                description="Regenerate every classifier report for one bundle (eval, "
                                            "calibration, model card, benchmark).")
    p.add_argument("--model", type=Path, default=None, help="bundle directory (default: TRIAGE_MODEL_DIR)")
    p.add_argument("--out", type=Path, default=None,
                   help="report folder (default: reports/classifier/<bundle folder name>)")
    p.add_argument("--test", help="labelled test file instead of the bundle's frozen test split")
    p.add_argument("--no-bench", action="store_true", help="skip the latency benchmark")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    model = args.model or get_settings().model_dir
    out = args.out or Path("reports/classifier") / Path(model).resolve().name
    try:
        files = regenerate(Path(model), out, test=args.test, bench=not args.no_bench,
                           progress=not args.no_progress)
    except (BundleError, DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
