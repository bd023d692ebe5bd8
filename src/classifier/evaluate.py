"""``python -m src.classifier.evaluate --model DIR --data FILE --json OUT``: score a saved bundle.

Works on any labelled file, including ones with labels the model never saw: those rows are
out-of-scope (e.g. CLINC150 ``oos``) and measure whether low confidence would send them to a
human (AUROC in-scope vs out-of-scope, and how many clear the auto-resolve threshold). Uses the
serving path (``IntentClassifier``) so the numbers are those of what is actually deployed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from src.classifier.data import DataError, clean_labelled, load_labelled
from src.classifier.gates import GateConfig
from src.classifier.types import BundleError
from src.config import get_settings

CHUNK = 512


def evaluate_texts(
    clf,
    texts: list[str],
    y_true: list[str],
    *,
    threshold: float,
    gates: GateConfig | None = None,
    progress: bool = True,
    settings=None,
    overlap: list[bool] | None = None,
) -> tuple[dict, object]:
    """Score ``texts`` as the service would (runtime preprocessing + the bundle's serving backend).

    Rows that preprocessing rejects never reach the classifier in production (they are escalated);
    they are left out of the metrics and counted in ``context.n_rejected_by_preprocessing``.
    ``overlap`` flags rows that are near twins of rows the model was trained/tuned on: the headline
    metrics are then repeated without them (``without_overlap``).
    """
    from tqdm.auto import tqdm

    from src.classifier.report import compute_eval
    from src.classifier.runtime_text import runtime_view

    view = runtime_view(texts, settings)
    if not view.texts:
        raise DataError("no row survives runtime preprocessing")
    start = time.perf_counter()
    chunks = tqdm(range(0, len(view.texts), CHUNK), desc="scoring", unit="chunk", disable=not progress)
    outs = [clf.outputs(view.texts[i : i + CHUNK]) for i in chunks]
    logits = np.concatenate([np.asarray(lg, dtype=np.float64) for lg, _ in outs])
    emb = np.concatenate([em for _, em in outs])
    seconds = time.perf_counter() - start
    ood = clf.ood_scores(logits, emb)
    guard = (clf.thresholds or {}).get("ood")
    labels = [y_true[i] for i in view.kept]
    result, arrays = compute_eval(logits, labels, clf.labels, clf.temperature, gates=gates,
                                  threshold=threshold, ood=ood, guard=guard)
    if overlap is not None:
        keep = np.array([not overlap[i] for i in view.kept], dtype=bool)
        block: dict = {"n_overlapping_rows": int((~keep).sum())}
        kept_labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        if (~keep).any() and set(kept_labels) & set(clf.labels):
            clean, _ = compute_eval(logits[keep], kept_labels, clf.labels, clf.temperature, gates=gates,
                                    threshold=threshold, ood={k: v[keep] for k, v in ood.items()},
                                    guard=guard)
            block.update({k: clean[k] for k in ("n_test", "accuracy", "macro_f1", "ece_after")})
            if "out_of_scope" in clean:
                block["oos_scores"] = clean["out_of_scope"]["scores"]
        result["without_overlap"] = block
    result["context"] = {
        "bundle_version": clf.version,
        "backend": getattr(clf.backend, "name", type(clf.backend).__name__),
        "text": "runtime view: src.text.preprocess(...).masked_text, as the graph classifies it",
        "n_rejected_by_preprocessing": view.n_dropped,
        "scoring_seconds": round(seconds, 2),
    }
    return result, arrays


def evaluate_bundle(
    model_dir: str | Path,
    data: str | Path,
    json_out: str | Path,
    *,
    threshold: float | None = None,
    backend: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    gates: GateConfig | None = None,
    batch_size: int = 64,
    progress: bool = True,
    oos_labels: list[str] | None = None,
    data_label: str | None = None,
    log=print,
) -> dict:
    """Evaluate ``model_dir`` on ``data``; writes ``json_out`` (+ .md + PNGs beside it), returns the dict.

    Unknown labels are an error unless declared out-of-scope (``oos_labels``); rows that are near
    twins of the bundle's train/val/calibration rows are flagged and the metrics repeated without them.
    """
    import json

    from src.classifier.data import check_test_labels, overlapping_rows
    from src.classifier.inference import IntentClassifier
    from src.classifier.report import hardware_info, write_eval
    from src.classifier.train import OOS_LABELS

    clf = IntentClassifier.load(model_dir, backend=backend)
    df, report = clean_labelled(load_labelled(data, text_column, label_column), source=str(data))
    for line in report.summary_lines():
        log(line)
    if df.empty:
        raise DataError(f"{data}: no usable rows")
    check_test_labels(df["label"].tolist(), clf.labels, list(oos_labels or OOS_LABELS))
    manifest_path = Path(model_dir) / "split_manifest.json"
    overlap = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        overlap = overlapping_rows(df, manifest, ("train", "val", "calibration")).tolist()
    if threshold is None:
        threshold = float((clf.thresholds or {}).get("auto_resolve", 0.85))
    result, arrays = evaluate_texts(clf, df["text"].tolist(), df["label"].tolist(), threshold=threshold,
                                    gates=gates, progress=progress, overlap=overlap)
    from src.system_info import git_commit

    result["context"].update({
        "data": data_label or str(data),
        "model": str(model_dir),
        "commit": git_commit(),
        "hardware": hardware_info(),
        "data_cleaning": report.to_dict(),
    })
    write_eval(result, arrays, json_out, title=data_label or Path(str(data)).stem)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.evaluate",
        description="Evaluate a saved classifier bundle on a labelled file (unknown labels = out-of-scope).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default=None, help="bundle directory (default: TRIAGE_MODEL_DIR)")
    p.add_argument("--data", required=True, help="labelled CSV/TSV/JSONL/JSON/Parquet file or HF dataset id")
    p.add_argument("--json", required=True, dest="json_out", help="output JSON (.md + PNGs beside it)")
    p.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold for coverage / out-of-scope counts (default: the bundle's "
                        "auto_resolve threshold, 0.85 unless tuned)")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--min-macro-f1", type=float, default=GateConfig.min_macro_f1)
    p.add_argument("--min-accuracy", type=float, default=GateConfig.min_accuracy)
    p.add_argument("--min-per-class-f1", type=float, default=GateConfig.min_per_class_f1)
    p.add_argument("--oos-label", action="append", default=None,
                   help="label that means 'none of the intents' (default: oos, out_of_scope, out-of-scope); "
                        "any other label the model does not know is an error")
    p.add_argument("--strict", action="store_true", help="exit 1 when a release gate fails")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threshold is not None and not 0 < args.threshold <= 1:
        print("error: --threshold must be in (0, 1]", file=sys.stderr)
        return 2
    model_dir = args.model or str(get_settings().model_dir)
    try:
        res = evaluate_bundle(
            model_dir, args.data, args.json_out, threshold=args.threshold, backend=args.backend,
            text_column=args.text_column, label_column=args.label_column,
            gates=GateConfig(args.min_macro_f1, args.min_accuracy, args.min_per_class_f1),
            progress=not args.no_progress, oos_labels=args.oos_label,
        )
    except (DataError, BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"in-scope n={res['n_test']}: accuracy {res['accuracy']:.4f}  macro-F1 {res['macro_f1']:.4f}  "
          f"ECE {res['ece_after']:.4f} (uncalibrated {res['ece_before']:.4f})")
    if "out_of_scope" in res:
        o = res["out_of_scope"]
        print(f"out-of-scope n={o['n']}: {o['above_threshold']} ({o['above_threshold_rate']:.1%}) reach "
              f"confidence >= {res['threshold']:.4g}" + (
                  f"; {o['guard']['above_threshold_passing_guard']} "
                  f"({o['guard']['above_threshold_passing_guard_rate']:.1%}) also pass the "
                  f"{o['guard']['score']} guard" if o.get("guard") else ""))
        for name, m in o["scores"].items():
            auroc = "n/a" if m["auroc"] is None else f"{m['auroc']:.4f}"
            fpr = "n/a" if m["fpr_at_95_tpr"] is None else f"{m['fpr_at_95_tpr']:.4f}"
            print(f"  {name}: AUROC {auroc}, FPR@95%TPR {fpr}")
    gates = res["gates"]
    print("gates: " + ("PASS" if gates["passed"] else "FAIL: " + "; ".join(gates["failures"])))
    print(f"wrote {args.json_out}")
    return 1 if args.strict and not gates["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
