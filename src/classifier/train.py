"""``python -m src.classifier.train --data FILE --out DIR``: data -> model -> bundle -> calibration -> eval.

One command turns a labelled ticket export into a complete, versioned serving bundle plus its
evaluation pack. Steps: load + clean + diagnose the data (near duplicates grouped, label conflicts
reported), freeze a train / val / calibration / test split manifest (or reuse one / use
``--test FILE``), train with best-on-val early stopping (val chooses the epoch, nothing else), save
the bundle (``src.classifier.bundle``), then — through the backend the bundle serves with and on
text preprocessed as at runtime — fit the temperature and the auto-resolve thresholds on the
calibration split (``src.graph.calibrate``), evaluate on the test split and check the release gates.
Exit codes: 0 ok, 1 gates failed (bundle still written), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from src.classifier.data import (
    DataError,
    DataReport,
    build_manifest,
    check_balance,
    check_test_labels,
    class_balance,
    clean_labelled,
    load_labelled,
    overlapping_rows,
    split_from_manifest,
)
from src.classifier.data_tools import report_data_tools
from src.classifier.gates import GateConfig
from src.classifier.leakage_split import leakage_safe_split
from src.classifier.types import BundleError
from src.config import get_settings

# Learning rate of the encoder side per method (the head always uses --head-lr): LoRA adapters start
# at zero and tolerate a larger step than pretrained weights do (reports/classifier/RUNS.md).
DEFAULT_LR = {"lora": 1e-3, "full": 1e-4}
# Labels of a test file that name "none of the intents" (scored as out-of-scope, not an error).
OOS_LABELS = ("oos", "out_of_scope", "out-of-scope")


@dataclass
class TrainConfig:
    """Everything the training CLI accepts; recorded in the bundle's ``train_config``."""

    data: list[str]
    out: str
    base_model: str = ""  # "" -> Settings.base_model
    text_column: str | None = None
    label_column: str | None = None
    test: str | None = None
    split_manifest: str | None = None
    method: str = "lora"  # "lora" (small bundle) | "full" (every weight)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    target_modules: list[str] = field(default_factory=list)
    head_dropout: float = 0.1
    epochs: int = 5
    lr: float | None = None  # None: DEFAULT_LR[method]
    head_lr: float = 3e-3
    evals_per_epoch: int = 2
    mixed_precision: str = "auto"
    batch_size: int = 32
    max_length: int = 64
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 42
    class_weights: bool = False
    patience: int = 2
    force: bool = False
    max_per_class: int | None = None
    val_fraction: float = 0.1
    calibration_fraction: float = 0.1
    test_fraction: float = 0.1
    min_macro_f1: float = 0.65
    min_accuracy: float = 0.70
    min_per_class_f1: float = 0.50
    threshold: float | None = None  # None: the bundle's calibrated auto-resolve threshold
    # "ci95" (the largest T the calibration data cannot reject: never collapses on separable data) | "nll"
    temperature_rule: str = "ci95"
    ood: bool = True  # fit the Gaussian out-of-distribution model on training embeddings
    oos_labels: list[str] = field(default_factory=lambda: list(OOS_LABELS))
    threads: int | None = None
    export_onnx: bool = True
    progress: bool = True
    command: str | None = None  # the CLI line, recorded in eval.json


@dataclass
class TrainResult:
    """Where the bundle went and the headline numbers (also in ``<out>/eval.json``)."""

    out_dir: Path
    eval: dict
    bundle_version: str | None
    train_seconds: float
    gates_passed: bool


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _subsample(df: pd.DataFrame, max_per_class: int, seed: int) -> pd.DataFrame:
    """At most ``max_per_class`` rows per class, chosen by content hash + seed (order-independent)."""
    parts = []
    for _, g in sorted(df.groupby("label"), key=lambda kv: kv[0]):
        g = g.sort_values("sha256")
        parts.append(g.sample(n=min(len(g), max_per_class), random_state=seed))
    return pd.concat(parts).reset_index(drop=True)


def _load_clean(sources: list[str], cfg: TrainConfig, log) -> tuple[pd.DataFrame, DataReport]:
    frames = [load_labelled(s, cfg.text_column, cfg.label_column) for s in sources]
    raw = pd.concat(frames, ignore_index=True)
    clean, report = clean_labelled(raw, source=",".join(sources))
    for line in report.summary_lines():
        log(line)
    return clean, report


def prepare_splits(cfg: TrainConfig, log=print) -> tuple[dict[str, pd.DataFrame], dict, dict]:
    """Load, clean, check balance, split. Returns (splits, manifest, data_info). Raises DataError."""
    if not cfg.data:
        raise DataError("no --data given")
    clean, report = _load_clean(cfg.data, cfg, log)
    if clean.empty:
        raise DataError(f"{report.source}: no usable rows (all empty or missing)")
    if cfg.max_per_class:
        clean = _subsample(clean, cfg.max_per_class, cfg.seed)
        log(f"--max-per-class {cfg.max_per_class}: using {len(clean)} rows")
    balance = class_balance(clean["label"].tolist())
    warning = check_balance(balance, force=cfg.force)
    if warning:
        log(warning)
    test_report = None
    split_seed = cfg.seed
    if cfg.split_manifest:
        try:
            frozen = json.loads(Path(cfg.split_manifest).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read split manifest {cfg.split_manifest}: {exc}") from None
        if not frozen.get("calibration"):
            raise DataError(f"split manifest {cfg.split_manifest} has no calibration split (written before "
                            "train/val/calibration/test splits existed): train without --split-manifest")
        splits = {p: split_from_manifest(clean, frozen, p) for p in ("train", "val", "calibration")}
        if cfg.test is None:
            splits["test"] = split_from_manifest(clean, frozen, "test")
        split_seed = int(frozen.get("seed", cfg.seed))
        log(f"reusing split manifest {cfg.split_manifest}")
    else:
        test_fraction = 0.0 if cfg.test else cfg.test_fraction
        splits = leakage_safe_split(  # by customer / time when the data has such columns (#16)
            clean, cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=test_fraction,
            calibration_fraction=cfg.calibration_fraction, text_column=cfg.text_column, log=log,
        )
    if cfg.test:
        test_clean, test_report = clean_labelled(load_labelled(cfg.test, cfg.text_column, cfg.label_column),
                                                 source=cfg.test)
        for line in test_report.summary_lines():
            log("test file: " + line)
        check_test_labels(test_clean["label"].tolist(), sorted(set(splits["train"]["label"])), cfg.oos_labels)
        seen = build_manifest(splits, seed=split_seed, source="", full=clean)
        overlap = overlapping_rows(test_clean, seen, ("train", "val", "calibration"))
        if overlap.any():
            log(f"test file: {int(overlap.sum())} rows are near twins of train/val/calibration rows "
                "(eval.json reports metrics with and without them)")
        splits["test"] = test_clean
    manifest = build_manifest(splits, seed=split_seed, source=report.source, full=clean, test_source=cfg.test)
    for part, why in (("val", "choose the epoch"), ("calibration", "fit the temperature and thresholds")):
        if len(splits[part]) == 0:
            raise DataError(f"the {part} split is empty (needed to {why}): need at least 4 rows per class")
    if len(splits["test"]) == 0:
        raise DataError("the test split is empty: need at least 4 rows per class, or pass --test FILE")
    train_labels = set(splits["train"]["label"])
    for part in ("val", "calibration"):
        unknown = set(splits[part]["label"]) - train_labels
        if unknown:
            raise DataError(f"{part} labels missing from training data: {sorted(unknown)[:10]}")
    data_info = {
        "source": report.source,
        "data_hash": manifest["data_hash"],
        "n_rows": len(clean),
        "n_train": len(splits["train"]),
        "n_val": len(splits["val"]),
        "n_calibration": len(splits["calibration"]),
        "n_test": len(splits["test"]),
        "test_source": cfg.test,
        "cleaning": report.to_dict(),
        "test_cleaning": test_report.to_dict() if test_report else None,
        "max_per_class": cfg.max_per_class,
    }
    log(f"split: train {len(splits['train'])}, val {len(splits['val'])}, calibration "
        f"{len(splits['calibration'])}, test {len(splits['test'])} (near twins never straddle splits)")
    return splits, manifest, data_info


def train(cfg: TrainConfig, log=print) -> TrainResult:
    """Run the whole pipeline; raises DataError / BundleError / FileNotFoundError on bad input."""
    import torch

    from src.classifier import bundle as bundle_mod
    from src.classifier.fit_loop import LoopConfig, fit, predict_outputs
    from src.classifier.model import ModelSpec, build_classifier
    from src.classifier.ood import GaussianDensity
    from src.classifier.report import hardware_info, write_eval
    from src.system_info import git_commit

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.base_model = cfg.base_model or get_settings().base_model
    _seed_everything(cfg.seed)
    code_commit = git_commit()  # at the start: the code that trains is the code that was checked out
    wall_start = time.perf_counter()
    splits, manifest, data_info = prepare_splits(cfg, log)
    labels = sorted(set(splits["train"]["label"]))
    index = {lab: i for i, lab in enumerate(labels)}

    spec = ModelSpec(cfg.method, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, tuple(cfg.target_modules),
                     cfg.head_dropout)
    built = build_classifier(cfg.base_model, labels, spec)
    how = f"LoRA r={cfg.lora_r} on {built.target_modules}" if cfg.method == "lora" else "full fine-tuning"
    log(f"base {cfg.base_model} ({built.model_type}), mean pooling + linear head; {how}; "
        f"{built.n_trainable:,} of {built.n_total:,} params trainable")
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.method]
    loop = LoopConfig(
        epochs=cfg.epochs, lr=lr, head_lr=cfg.head_lr, batch_size=cfg.batch_size, max_length=cfg.max_length,
        weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, patience=cfg.patience,
        evals_per_epoch=cfg.evals_per_epoch, seed=cfg.seed, class_weights=cfg.class_weights,
        mixed_precision=cfg.mixed_precision,
    )
    tr, va, te = splits["train"], splits["val"], splits["test"]  # calibration: after saving
    train_y = [index[x] for x in tr["label"]]
    result = fit(
        built.model, built.tokenizer, tr["text"].tolist(), train_y,
        va["text"].tolist(), [index[x] for x in va["label"]],
        len(labels), loop, progress=cfg.progress, log=log,
    )
    density = None
    if cfg.ood:
        _, train_emb = predict_outputs(built.model, built.tokenizer, tr["text"].tolist(),
                                       max_length=cfg.max_length, progress=cfg.progress)
        density = GaussianDensity.fit(train_emb, np.asarray(train_y), len(labels))
    train_seconds = time.perf_counter() - wall_start
    train_config = {
        **{k: v for k, v in asdict(cfg).items() if k not in ("progress", "out", "command")},
        "lr": lr,
        "base_model_path": built.base_path,
        "model_type": built.model_type,
        "architecture": "mean pooling + linear head",
        "target_modules": built.target_modules,
        "n_trainable_params": built.n_trainable,
        "n_total_params": built.n_total,
        "best_epoch": result.best_epoch,
        "best_val_macro_f1": result.best_val_macro_f1,
        "stopped_early": result.stopped_early,
        "device": result.device,
        "mixed_precision": result.mixed_precision,
        "history": result.history,
        "train_seconds": round(train_seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    out = Path(cfg.out)
    log(f"saving bundle to {out}" + (" (with int8 ONNX export)" if cfg.export_onnx else ""))
    bundle_mod.save_bundle(
        out, model=built.model, tokenizer=built.tokenizer, labels=labels, temperature=1.0,
        base_model=cfg.base_model, train_config=train_config, data_info=data_info,
        split_manifest=manifest, export_onnx=cfg.export_onnx, method=cfg.method, ood=density,
        verify_texts=va["text"].tolist(), temperature_fit_on="none yet (the calibration step replaces it)",
    )
    cal = calibrate_step(out, splits["calibration"], data_info["source"], cfg, log)
    ev, arrays = evaluate_step(out, te, cfg, log)
    ev["calibration"] = {k: cal[k] for k in ("global_threshold", "pooled", "target_precision", "alpha",
                                             "min_support", "scope", "n", "n_dropped", "temperature")}
    headline = {k: ev[k] for k in ("accuracy", "macro_f1", "ece_before", "ece_after", "nll_before",
                                   "nll_after", "n_test", "temperature")}
    headline["gates_passed"] = ev["gates"]["passed"]
    headline["calibrated_global_threshold"] = cal["global_threshold"]
    if "out_of_scope" in ev:
        headline["oos_auroc"] = ev["out_of_scope"]["auroc_confidence"]
    version = bundle_mod.update_bundle(out, metrics=headline)
    ev["train_seconds"] = round(train_seconds, 1)
    ev["train_history"] = result.history
    ev["context"] = {
        **ev.get("context", {}),
        "data": data_info["source"],
        "test_data": cfg.test or "held-out test split (split_manifest.json)",
        "model": f"{cfg.base_model} + "
                 + (f"LoRA r={cfg.lora_r}" if cfg.method == "lora" else "full fine-tune"),
        "bundle": str(out),
        "bundle_version": version,
        "command": cfg.command,
        "commit": code_commit,
        "hardware": hardware_info(),
    }
    write_eval(ev, arrays, out / "eval.json", title=Path(data_info["source"].split(",")[0]).stem)
    report_data_tools(out, splits, log)  # baselines + failure clusters into the eval pack (#16)
    _write_card(out, log)
    return TrainResult(out, ev, version, train_seconds, ev["gates"]["passed"])


def calibrate_step(out: Path, cal: pd.DataFrame, source: str, cfg: TrainConfig, log) -> dict:
    """Temperature + auto-resolve thresholds on the calibration split, through the served backend."""
    from src.graph.calibrate import DEFAULT_OOD_SCORE, calibrate_bundle, write_reports

    settings = get_settings()
    result, version = calibrate_bundle(
        out, cal["text"].tolist(), cal["label"].tolist(),
        description=f"calibration split of `{source}` (frozen manifest)",
        target=settings.calibration_target_precision, alpha=0.05,
        min_support=settings.calibration_min_support, floor=settings.auto_threshold,
        temperature_rule=cfg.temperature_rule, progress=cfg.progress, settings=settings,
        ood_score=DEFAULT_OOD_SCORE if cfg.ood else None,
    )
    result["argv"] = ["--model", str(out), "(run by src.classifier.train)"]
    write_reports(result, out, str(out), version, written=True)
    n_auto = sum(r["auto_resolve"] is not None for r in result["per_intent"].values())
    t = result["global_threshold"]
    log(f"calibration ({result['n']} rows, {result['backend']} backend): temperature "
        f"{result['temperature']:.4f}; auto-resolve threshold "
        f"{'none passed' if t is None else f'{t:.6f}'} ({n_auto}/{len(result['per_intent'])} intents)")
    return result


def evaluate_step(out: Path, te: pd.DataFrame, cfg: TrainConfig, log) -> tuple[dict, object]:
    """Test metrics of the served bundle (backend + runtime text), never the training-time model."""
    from src.classifier.evaluate import evaluate_texts
    from src.classifier.inference import IntentClassifier

    clf = IntentClassifier.load(out)
    gates = GateConfig(cfg.min_macro_f1, cfg.min_accuracy, cfg.min_per_class_f1)
    threshold = cfg.threshold
    if threshold is None:
        threshold = float(clf.thresholds.get("auto_resolve", 0.85))
    overlap = None
    if cfg.test:  # an external file may repeat training rows; the carved test split cannot
        manifest = json.loads((out / "split_manifest.json").read_text(encoding="utf-8"))
        overlap = overlapping_rows(te, manifest, ("train", "val", "calibration")).tolist()
    ev, arrays = evaluate_texts(clf, te["text"].tolist(), te["label"].tolist(), threshold=threshold,
                                gates=gates, progress=cfg.progress, overlap=overlap)
    log(f"test ({ev['context']['backend']} backend, {ev['n_test']} in-scope rows): accuracy "
        f"{ev['accuracy']:.4f}, macro-F1 {ev['macro_f1']:.4f}")
    return ev, arrays


def _write_card(out: Path, log) -> None:
    """MODEL_CARD.md is rendered by the serving side; skip quietly if that module is absent."""
    try:
        from src.classifier.model_card import write_model_card
    except ImportError:
        log("note: src.classifier.model_card not available; MODEL_CARD.md not written")
        return
    try:
        write_model_card(out)
    except Exception as exc:  # noqa: BLE001 - a card failure must not lose a trained bundle
        log(f"WARNING: MODEL_CARD.md not written: {exc}")


# ------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig(data=[], out="")
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.train",
        description="Train a calibrated LoRA intent classifier and write a serving bundle + eval pack.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", required=True,
                   help="labelled CSV/TSV/JSONL/JSON/Parquet file or HF dataset id (owner/name[:split]); "
                        "repeat to concatenate files")
    g.add_argument("--out", required=True, help="bundle output directory")
    g.add_argument("--text-column", help="text column (auto: text/instruction/utterance/query/sentence)")
    g.add_argument("--label-column", help="label column (auto: label/intent/category)")
    g.add_argument("--test", help="external labelled test file instead of carving a test split; labels "
                                  "the model does not know (e.g. oos) are scored as out-of-scope")
    g.add_argument("--split-manifest", help="reuse the train/val(/test) split of an earlier bundle's "
                                            "split_manifest.json (comparable evaluation across runs)")
    g.add_argument("--max-per-class", type=int, help="cap rows per class (quick runs)")
    g.add_argument("--calibration-fraction", type=float, default=d.calibration_fraction,
                   help="share of rows held out to fit the temperature and the auto-resolve thresholds")
    g.add_argument("--force", action="store_true", help="train even when class balance entropy < 0.5")
    g.add_argument("--seed", type=int, default=d.seed, help="split + training seed")
    m = p.add_argument_group("model")
    m.add_argument("--base-model", default=None,
                   help="minilm (offline, default from TRIAGE_BASE_MODEL), mpnet, a local dir, or a hub id "
                        "such as distilbert-base-uncased")
    m.add_argument("--method", choices=["lora", "full"], default=d.method,
                   help="lora: adapters on the encoder (bundle of a few MB); full: fine-tune every weight")
    m.add_argument("--lora-r", type=int, default=d.lora_r, help="LoRA rank")
    m.add_argument("--lora-alpha", type=int, default=d.lora_alpha, help="LoRA scaling alpha")
    m.add_argument("--lora-dropout", type=float, default=d.lora_dropout, help="LoRA dropout")
    m.add_argument("--target-modules", type=_csv, default=[],
                   help="comma-separated LoRA targets (default per architecture, e.g. BERT "
                        "query,key,value,dense; DistilBERT q_lin,k_lin,v_lin,out_lin,lin1,lin2)")
    m.add_argument("--modules-to-save", type=_csv, default=[],
                   help="ignored (kept for old command lines): the linear head is always trained and saved")
    m.add_argument("--head-dropout", type=float, default=d.head_dropout, help="dropout before the head")
    m.add_argument("--no-ood", action="store_true",
                   help="skip the out-of-distribution model (Gaussians of training embeddings)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs, help="max epochs (best epoch on val kept)")
    o.add_argument("--lr", type=float, default=None,
                   help=f"peak AdamW learning rate of the encoder side (default per method: {DEFAULT_LR})")
    o.add_argument("--head-lr", type=float, default=d.head_lr, help="peak learning rate of the fresh head")
    o.add_argument("--evals-per-epoch", type=int, default=d.evals_per_epoch,
                   help="validation evaluations per epoch (early stopping granularity)")
    o.add_argument("--mixed-precision", choices=["auto", "no", "fp16", "bf16"], default=d.mixed_precision,
                   help="auto: bf16/fp16 on a GPU, full precision on the CPU")
    o.add_argument("--batch-size", type=int, default=d.batch_size, help="rows per step")
    o.add_argument("--max-length", type=int, default=d.max_length, help="max tokens per text")
    o.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="linear warm-up share")
    o.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    o.add_argument("--class-weights", action="store_true", help="class-balanced loss for imbalanced data")
    o.add_argument("--patience", type=int, default=d.patience,
                   help="validation evaluations without a better macro-F1 before stopping")
    o.add_argument("--threads", type=int, help="torch CPU threads (default: torch picks; 1 on a busy box)")
    e = p.add_argument_group("evaluation gates")
    e.add_argument("--min-macro-f1", type=float, default=d.min_macro_f1, help="release gate")
    e.add_argument("--min-accuracy", type=float, default=d.min_accuracy, help="release gate")
    e.add_argument("--min-per-class-f1", type=float, default=d.min_per_class_f1, help="release gate")
    e.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold reported for coverage / out-of-scope rows (default: the "
                        "calibrated auto-resolve threshold)")
    e.add_argument("--temperature-rule", choices=["nll", "ci95"], default=d.temperature_rule,
                   help="fitted on the calibration split. nll: the NLL optimum; ci95: the largest "
                        "temperature within its 95%% likelihood interval (never collapses towards T=0 when "
                        "the split is perfectly classified)")
    e.add_argument("--oos-label", action="append", default=None,
                   help="label of a --test row that means 'none of the intents' (default: "
                        f"{', '.join(OOS_LABELS)}); any other unknown label is an error")
    e.add_argument("--no-onnx", action="store_true", help="skip the int8 ONNX export")
    e.add_argument("--no-progress", action="store_true")
    return p


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def config_from_args(args: argparse.Namespace, argv: list[str] | None = None) -> TrainConfig:
    return TrainConfig(
        data=args.data, out=args.out, base_model=args.base_model or "", text_column=args.text_column,
        label_column=args.label_column, test=args.test, split_manifest=args.split_manifest,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=args.target_modules, epochs=args.epochs, method=args.method,
        head_dropout=args.head_dropout, ood=not args.no_ood, head_lr=args.head_lr,
        evals_per_epoch=args.evals_per_epoch, mixed_precision=args.mixed_precision,
        oos_labels=args.oos_label or list(OOS_LABELS),
        lr=args.lr, batch_size=args.batch_size, max_length=args.max_length, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, seed=args.seed, class_weights=args.class_weights,
        patience=args.patience, force=args.force, max_per_class=args.max_per_class,
        calibration_fraction=args.calibration_fraction,
        min_macro_f1=args.min_macro_f1, min_accuracy=args.min_accuracy,
        min_per_class_f1=args.min_per_class_f1, threshold=args.threshold, threads=args.threads,
        temperature_rule=args.temperature_rule,
        export_onnx=not args.no_onnx, progress=not args.no_progress,
        command="python -m src.classifier.train " + " ".join(sys.argv[1:] if argv is None else argv),
    )


def _validate(cfg: TrainConfig) -> None:
    checks = [
        (cfg.epochs >= 1, "--epochs must be >= 1"),
        (cfg.batch_size >= 1, "--batch-size must be >= 1"),
        (cfg.lr is None or cfg.lr > 0, "--lr must be > 0"),
        (cfg.head_lr > 0, "--head-lr must be > 0"),
        (cfg.evals_per_epoch >= 1 and cfg.patience >= 1, "--evals-per-epoch and --patience must be >= 1"),
        (8 <= cfg.max_length <= 512, "--max-length must be in [8, 512]"),
        (cfg.lora_r >= 1, "--lora-r must be >= 1"),
        (0 <= cfg.lora_dropout < 1, "--lora-dropout must be in [0, 1)"),
        (cfg.max_per_class is None or cfg.max_per_class >= 3, "--max-per-class must be >= 3"),
        (cfg.threshold is None or 0 < cfg.threshold <= 1, "--threshold must be in (0, 1]"),
        (0 < cfg.calibration_fraction < 0.5, "--calibration-fraction must be in (0, 0.5)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise DataError(msg)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        _validate(cfg)
        res = train(cfg)
    except (DataError, BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ev = res.eval
    print(
        f"test: accuracy {ev['accuracy']:.4f}  macro-F1 {ev['macro_f1']:.4f}  ECE {ev['ece_before']:.4f} -> "
        f"{ev['ece_after']:.4f} (T={ev['temperature']:.3f})  n={ev['n_test']}  "
        f"train {res.train_seconds:.0f}s  bundle {res.bundle_version}"
    )
    if "out_of_scope" in ev:
        o = ev["out_of_scope"]
        print(f"out-of-scope: n={o['n']}  AUROC {o['auroc_confidence']:.4f}  "
              f"{o['above_threshold']} above threshold {ev['threshold']}")
    if not res.gates_passed:
        print("GATES FAILED: " + "; ".join(ev["gates"]["failures"]), file=sys.stderr)
        return 1
    print(f"gates passed; report: {res.out_dir / 'eval.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
