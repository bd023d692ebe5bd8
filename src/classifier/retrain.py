"""``python -m src.classifier.retrain --out DIR``: a candidate bundle from the original data + corrections.

The serving bundle's own training data and frozen split are the base (so the candidate is evaluated
on exactly the rows the current model was). Reviewers' intent corrections (``src.classifier.feedback``,
read from the audit store or ``--feedback FILE``) are merged into the *training* part only:

- bad examples, unknown intents and empty texts are dropped;
- the same text corrected by several reviewers counts once; reviewers who disagree are a conflict
  (the label with a strict majority of distinct reviewers wins, a tie is dropped) and are reported;
- a correction of a validation / calibration / test row never trains (it would leak into the numbers
  the gate compares); one that contradicts an original training label replaces it only when
  ``--min-agreement`` distinct reviewers agree;
- caps, so a few reviewers cannot flip a class: the corrections added to a class are at most
  ``--max-class-share`` of its original training rows, one reviewer's at most ``--reviewer-share``
  (newest first; the rest are reported as capped).

Then the normal training pipeline runs (``src.classifier.train``) with the current bundle's recipe.
``DIR/retrain/`` keeps the merged data, the split manifest and ``report.json`` / ``report.md``
(what was added, dropped and why, and whether the candidate now predicts each corrected ticket's
intent). Exit codes: 0 ok, 1 training gates failed, 2 bad input / nothing to learn.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from src.classifier.data import (
    DataError,
    add_row_ids,
    clean_labelled,
    load_labelled,
    split_from_manifest,
    text_key,
)
from src.classifier.feedback import LabelledRow
from src.classifier.types import BundleError

EVAL_PARTS = ("val", "calibration", "test")
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class MergePolicy:
    """How much a handful of reviewers may change; defaults are conservative."""

    max_class_share: float = 0.25  # corrections into a class <= this share of its original training rows
    reviewer_share: float = 0.10  # one reviewer's corrections into a class <= this share of those rows
    min_cap: int = 3  # floor of both caps (a small class can still learn a little)
    min_agreement: int = 2  # distinct reviewers needed to overrule an original training label
    include_confirmed: bool = False  # also add confirmed predictions (usually redundant)


@dataclass
class MergeReport:
    """Every correction's fate, with examples (the conflicts report)."""

    n_feedback: int = 0
    n_used: int = 0
    dropped: Counter = field(default_factory=Counter)
    conflicts: list[dict] = field(default_factory=list)  # reviewers disagree on one text
    overrides: list[dict] = field(default_factory=list)  # original training label replaced
    capped: dict[str, int] = field(default_factory=dict)  # class -> corrections left out by the caps
    caps: dict[str, dict[str, int]] = field(default_factory=dict)
    added: list[dict] = field(default_factory=list)  # provenance of each added row

    def to_dict(self) -> dict:
        out = asdict(self)
        out["dropped"] = dict(self.dropped)
        return out

    def lines(self) -> list[str]:
        d = self.dropped
        out = [f"feedback: {self.n_feedback} labelled tickets -> {self.n_used} training rows added"]
        if d:
            out.append("left out: " + ", ".join(f"{n} {why}" for why, n in sorted(d.items())))
        for c in self.conflicts[:5]:
            out.append(f"  conflict: {c['text'][:70]!r} -> {c['votes']} ({c['outcome']})")
        for o in self.overrides[:5]:
            who = f"{o['reviewers']} reviewers"
            out.append(f"  override: {o['text'][:70]!r} {o['old']} -> {o['new']} ({who})")
        for label, n in sorted(self.capped.items()):
            cap = self.caps.get(label, {})
            out.append(f"  capped: {n} corrections of {label!r} (class cap {cap.get('class')}, "
                       f"per reviewer {cap.get('reviewer')})")
        return out


@dataclass
class _Group:
    text: str
    label: str
    reviewers: list[str]
    tickets: list[str]
    latest: str
    rows: list[LabelledRow]


def _resolve_groups(rows: list[LabelledRow], report: MergeReport) -> list[_Group]:
    """One candidate per near-duplicate text; disagreeing reviewers resolved by strict majority."""
    by_group: dict[str, list[LabelledRow]] = defaultdict(list)
    for row in rows:
        by_group[text_key(row.text)].append(row)
    out = []
    for members in by_group.values():
        votes: dict[str, set[str]] = defaultdict(set)
        for r in members:
            votes[r.label].add(r.reviewer)
        ranked = sorted(votes.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        winner = ranked[0]
        if len(ranked) > 1:
            tie = len(ranked[1][1]) == len(winner[1])
            tally = {lab: len(who) for lab, who in ranked}
            outcome = "dropped: tie" if tie else f"kept {winner[0]!r} (majority of reviewers)"
            if len(report.conflicts) < MAX_EXAMPLES:
                report.conflicts.append({"text": members[-1].text, "votes": tally, "outcome": outcome})
            if tie:
                report.dropped["conflicting reviewers (tie)"] += len(members)
                continue
            report.dropped["outvoted"] += sum(r.label != winner[0] for r in members)
        agreeing = sorted((r for r in members if r.label == winner[0]), key=lambda r: r.reviewed_at)
        out.append(_Group(text=agreeing[-1].text, label=winner[0], reviewers=sorted(winner[1]),
                          tickets=[r.ticket_id for r in agreeing], latest=agreeing[-1].reviewed_at,
                          rows=agreeing))  # fmt: skip
    return out


def _caps(train_counts: Counter, policy: MergePolicy) -> dict[str, dict[str, int]]:
    return {
        label: {
            "class": max(policy.min_cap, math.floor(policy.max_class_share * n)),
            "reviewer": max(policy.min_cap, math.floor(policy.reviewer_share * n)),
        }
        for label, n in train_counts.items()
    }


def merge_corrections(
    base: pd.DataFrame, manifest: dict, rows: list[LabelledRow], policy: MergePolicy | None = None
) -> tuple[pd.DataFrame, set[str], MergeReport]:
    """(rows to add to train, sha256 of original train rows they replace, report) — pure.

    ``base`` is the cleaned original data (``id``/``sha256``/``group`` columns), ``manifest`` the
    serving bundle's split manifest.
    """
    policy = policy or MergePolicy()
    report = MergeReport(n_feedback=len(rows))
    part_of = {r["sha256"]: part for part in ("train", *EVAL_PARTS) for r in manifest.get(part) or []}
    base = base.assign(part=base["sha256"].map(part_of))
    train = base[base["part"] == "train"]
    labels = set(train["label"])
    wanted = []
    for r in rows:
        if r.bad_example:
            report.dropped["marked bad example"] += 1
        elif r.source != "corrected" and not policy.include_confirmed:
            report.dropped["confirmed prediction (nothing to learn)"] += 1
        elif r.label not in labels:
            report.dropped["intent the model does not have"] += 1
        elif not r.text.strip():
            report.dropped["empty text"] += 1
        else:
            wanted.append(r)
    groups = _resolve_groups(wanted, report)
    eval_groups = set(base.loc[base["part"].isin(EVAL_PARTS), "group"])
    train_labels = train.groupby("group")["label"].agg(set).to_dict()
    replaced: set[str] = set()
    accepted: list[_Group] = []
    for g in groups:
        key = text_key(g.text)
        if key in eval_groups:
            report.dropped["validation/calibration/test row (would leak into evaluation)"] += len(g.rows)
            continue
        known = train_labels.get(key)
        if known and known == {g.label}:
            report.dropped["already in the training data with this intent"] += len(g.rows)
            continue
        if known:
            if len(g.reviewers) < policy.min_agreement:
                why = f"contradicts a training label (needs {policy.min_agreement} reviewers)"
                report.dropped[why] += len(g.rows)
                continue
            old = train[train["group"] == key]
            replaced |= set(old["sha256"])
            report.overrides.append({"text": g.text, "old": sorted(known), "new": g.label,
                                     "reviewers": len(g.reviewers)})  # fmt: skip
        accepted.append(g)
    report.caps = _caps(Counter(train["label"]), policy)
    per_class: Counter = Counter()
    per_reviewer: Counter = Counter()
    kept: list[_Group] = []
    for g in sorted(accepted, key=lambda g: g.latest, reverse=True):  # newest first
        cap = report.caps[g.label]
        who = g.rows[-1].reviewer
        if per_class[g.label] >= cap["class"] or per_reviewer[(g.label, who)] >= cap["reviewer"]:
            report.capped[g.label] = report.capped.get(g.label, 0) + 1
            report.dropped["over the class / reviewer cap"] += len(g.rows)
            continue
        per_class[g.label] += 1
        per_reviewer[(g.label, who)] += 1
        kept.append(g)
    report.n_used = len(kept)
    report.added = [
        {"text": g.text, "label": g.label, "tickets": g.tickets, "reviewers": g.reviewers,
         "bundle_versions": sorted({r.bundle_version or "" for r in g.rows}),
         "predicted": g.rows[-1].predicted, "reviewed_at": g.latest}
        for g in kept
    ]  # fmt: skip
    added = pd.DataFrame({"text": [g.text for g in kept], "label": [g.label for g in kept]}, dtype=str)
    return add_row_ids(added) if len(added) else added, replaced, report


# ----------------------------------------------------------------------------------------- pipeline
def current_bundle_data(current: Path, data: list[str] | None, text_column: str | None = None,
                        label_column: str | None = None) -> tuple[pd.DataFrame, dict, list[str]]:
    """(cleaned original data, split manifest, sources) of the serving bundle; checks they still match."""
    manifest = json.loads((current / "split_manifest.json").read_text(encoding="utf-8"))
    sources = data or [s for s in str(manifest.get("source", "")).split(",") if s]
    missing = [s for s in sources if not Path(s).is_file()]
    if not sources or missing:
        raise DataError(f"the current bundle's training data is not on this machine "
                        f"({missing or 'none named'}): pass --data FILE (the file it was trained on)")
    frames = [load_labelled(s, text_column, label_column) for s in sources]
    clean, _ = clean_labelled(pd.concat(frames, ignore_index=True), source=",".join(sources))
    for part in ("train", "val", "calibration") + (() if manifest.get("test_source") else ("test",)):
        split_from_manifest(clean, manifest, part)  # raises DataError when the data changed
    return clean, manifest, sources


def merged_inputs(
    clean: pd.DataFrame, manifest: dict, added: pd.DataFrame, replaced: set[str], work: Path
) -> tuple[Path, Path]:
    """Write the merged data file and a manifest whose train part has the corrections (eval parts kept)."""
    work.mkdir(parents=True, exist_ok=True)
    keep = clean[~clean["sha256"].isin(replaced)]
    frames = [keep[["text", "label"]]] + ([added[["text", "label"]]] if len(added) else [])
    data_path = work / "data.csv"
    pd.concat(frames, ignore_index=True).to_csv(data_path, index=False)
    new = copy.deepcopy(manifest)
    new["train"] = [r for r in manifest["train"] if r["sha256"] not in replaced]
    if len(added):
        new["train"] += added[["id", "sha256", "group"]].to_dict("records")
    new["source"] = str(data_path)
    manifest_path = work / "split_manifest.json"
    manifest_path.write_text(json.dumps(new, indent=1) + "\n", encoding="utf-8")
    return data_path, manifest_path


def train_config_from(current_meta: dict, data: Path, manifest: Path, out: Path, test: str | None,
                      overrides: dict[str, Any]) -> Any:
    """The current bundle's recipe (same base model, method, epochs ...) with CLI overrides."""
    from src.classifier.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)} - {"data", "out", "split_manifest", "test", "command",
                                                     "max_per_class", "progress"}
    recorded = {k: v for k, v in (current_meta.get("train_config") or {}).items() if k in names}
    recorded.update(text_column=None, label_column=None)  # the merged file is text,label
    cfg = TrainConfig(data=[str(data)], out=str(out), split_manifest=str(manifest), test=test, **recorded)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def check_learnt(candidate: Path, current: Path, added: list[dict]) -> dict:
    """How many corrected tickets each bundle predicts as corrected (runtime text, serving backend)."""
    from src.classifier.inference import IntentClassifier
    from src.classifier.runtime_text import runtime_view

    if not added:
        return {"n": 0}
    texts = [a["text"] for a in added]
    view = runtime_view(texts)
    wanted = [added[i]["label"] for i in view.kept]
    out: dict[str, Any] = {"n": len(wanted)}
    for name, path in (("candidate", candidate), ("current", current)):
        preds = [p.label for p in IntentClassifier.load(path).predict(view.texts)]
        out[name] = sum(p == w for p, w in zip(preds, wanted, strict=True))
    return out


def render_report(result: dict) -> str:
    lines = [f"# Retrain report: {result['candidate_version']}", "",
             f"- current bundle: `{result['current']}` ({result['current_version']})",
             f"- base data: {', '.join(result['sources'])}",
             f"- policy: {result['policy']}", ""]  # fmt: skip
    lines += [f"- {line}" for line in MergeReport(**{**result["merge"], "dropped": Counter(
        result["merge"]["dropped"])}).lines()]
    learnt = result.get("learnt") or {}
    if learnt.get("n"):
        n = learnt["n"]
        lines += ["", f"Corrected tickets predicted as corrected: candidate {learnt['candidate']}/{n}, "
                      f"current {learnt['current']}/{n}."]
    ev = result.get("eval") or {}
    if ev:
        gates = "passed" if ev.get("gates_passed") else "FAILED"
        lines += ["", f"Test split (same rows as the current bundle's): accuracy {ev.get('accuracy'):.4f}, "
                      f"macro-F1 {ev.get('macro_f1'):.4f}; gates {gates}."]
    lines += ["", "Next: `python -m src.classifier.release gate --candidate DIR` (and shadow mode), then "
                  "`python -m src.classifier.release promote --candidate DIR --gate-report REPORT`."]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    d = MergePolicy()
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.retrain",
        description="Build a candidate bundle from the serving bundle's training data plus reviewers' "
        "accepted intent corrections (deduplicated, conflicts reported, capped per class and reviewer).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="candidate bundle directory")
    p.add_argument("--current", type=Path, default=None, help="serving bundle (default: TRIAGE_MODEL_DIR)")
    p.add_argument("--data", action="append", help="the current bundle's training data, if not where its "
                                                   "manifest says (repeat for several files)")
    p.add_argument("--feedback", type=Path, help="labelled rows from `python -m src.classifier.feedback` "
                                                 "instead of reading the audit store")
    p.add_argument("--max-class-share", type=float, default=d.max_class_share)
    p.add_argument("--reviewer-share", type=float, default=d.reviewer_share)
    p.add_argument("--min-cap", type=int, default=d.min_cap)
    p.add_argument("--min-agreement", type=int, default=d.min_agreement)
    p.add_argument("--include-confirmed", action="store_true", help="also train on confirmed predictions")
    p.add_argument("--allow-empty", action="store_true", help="retrain even when no correction is usable")
    g = p.add_argument_group("training overrides (default: the current bundle's recipe)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--max-length", type=int)
    g.add_argument("--threads", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--min-macro-f1", type=float)
    g.add_argument("--min-accuracy", type=float)
    g.add_argument("--min-per-class-f1", type=float)
    g.add_argument("--no-onnx", action="store_true")
    g.add_argument("--no-progress", action="store_true")
    return p


def _feedback_rows(path: Path | None) -> list[LabelledRow]:
    from src.classifier.feedback import load_feedback, read_feedback

    if path is not None:
        return read_feedback(path)
    from src.audit.store import open_audit_store

    store = open_audit_store(outbox=False)
    try:
        return load_feedback(store)
    finally:
        store.close()


def retrain(args: argparse.Namespace, log=print) -> tuple[int, dict]:
    """The whole command; returns (exit code, report dict)."""
    from src.classifier.bundle import load_bundle_meta
    from src.classifier.train import train
    from src.config import get_settings

    current = Path(args.current or get_settings().model_dir)
    meta = load_bundle_meta(current)
    recipe = meta.get("train_config") or {}
    clean, manifest, sources = current_bundle_data(current, args.data, recipe.get("text_column"),
                                                   recipe.get("label_column"))
    rows = _feedback_rows(args.feedback)
    policy = MergePolicy(args.max_class_share, args.reviewer_share, args.min_cap, args.min_agreement,
                         args.include_confirmed)
    added, replaced, report = merge_corrections(clean, manifest, rows, policy)
    for line in report.lines():
        log(line)
    if report.n_used == 0 and not args.allow_empty:
        log("nothing to learn: no usable correction (pass --allow-empty to retrain anyway)")
        return 2, {"merge": report.to_dict()}
    work = args.out / "retrain"
    data_path, manifest_path = merged_inputs(clean, manifest, added, replaced, work)
    overrides = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                 "max_length": args.max_length, "threads": args.threads, "seed": args.seed,
                 "min_macro_f1": args.min_macro_f1, "min_accuracy": args.min_accuracy,
                 "min_per_class_f1": args.min_per_class_f1,
                 "export_onnx": False if args.no_onnx else None,
                 "progress": False if args.no_progress else None,
                 "command": "python -m src.classifier.retrain " + " ".join(sys.argv[1:])}  # fmt: skip
    cfg = train_config_from(meta, data_path, manifest_path, args.out, manifest.get("test_source"), overrides)
    result_train = train(cfg, log=log)
    learnt = check_learnt(args.out, current, report.added)
    result = {
        "candidate": str(args.out), "candidate_version": result_train.bundle_version,
        "current": str(current), "current_version": meta["bundle_version"], "sources": sources,
        "policy": asdict(policy), "merge": report.to_dict(), "learnt": learnt,
        "replaced_training_rows": len(replaced),
        "eval": {k: result_train.eval.get(k) for k in ("accuracy", "macro_f1", "n_test")}
                | {"gates_passed": result_train.gates_passed},
    }  # fmt: skip
    (work / "report.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    (work / "report.md").write_text(render_report(result), encoding="utf-8")
    if learnt.get("n"):
        log(f"corrected tickets predicted as corrected: candidate {learnt['candidate']}/{learnt['n']}, "
            f"current {learnt['current']}/{learnt['n']}")
    log(f"candidate {result_train.bundle_version} in {args.out}; report {work / 'report.md'}")
    return (0 if result_train.gates_passed else 1), result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code, _ = retrain(args)
    except (DataError, BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
