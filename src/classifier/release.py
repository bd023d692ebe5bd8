"""Release gate on a frozen receipt, and an atomic ``promote`` / ``rollback`` of whole bundles.

A *receipt* pins the rows a release is judged on (``freeze``): each row's id and the sha256 of its
text and label, the rows file next to it, and the required slices. ``gate`` re-reads the rows, checks
they are exactly the pinned ones, scores the candidate and the serving bundle on the same rows through
the serving path (runtime-preprocessed text, each bundle's own backend, temperature and thresholds)
and holds the release, with a readable reason each, for:

- ``missing_row`` / ``unexpected_row`` / ``duplicate_row`` / ``drifted_row``: the rows are not the
  pinned ones (a changed label or text is drift), so no comparison is made;
- ``uncalibrated``: the candidate's thresholds were not calibrated for its own weights;
- ``required_slice``: a required slice below its minimum accuracy, or worse than the serving bundle by
  more than its allowed drop, or absent from the rows;
- ``macro_f1``: a lower macro-F1 than the serving bundle (beyond ``tolerance.macro_f1``);
- ``auto_resolve_precision``: a lower one-sided 95 % Clopper–Pearson bound on the precision of the
  tickets each bundle would auto-resolve by its own calibrated thresholds (floors from Settings).

``promote`` copies the candidate into ``releases/<bundle version>`` and swaps the serving path (a
symlink, default ``models/intent``) in one ``rename``: a reader sees the old bundle or the new one,
never a mix. ``rollback`` points it back at the bundle served before. Processes load the bundle at
start: restart the service / workers to serve the swapped one.

    python -m src.classifier.release freeze --from-bundle models/intent --out receipts/r1
    python -m src.classifier.release gate --receipt receipts/r1/receipt.json --candidate runs/cand
    python -m src.classifier.release promote --candidate runs/cand --gate-report runs/cand/gate.json
    python -m src.classifier.release rollback
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from src.classifier.data import DataError, row_hash

RECEIPT_KIND = "triage-release-receipt"
ROW_PROBLEMS = ("missing_row", "unexpected_row", "duplicate_row", "drifted_row")
DEFAULT_LINK = Path("models/intent")
HISTORY_FILE = "history.json"


class ReleaseError(RuntimeError):
    """A promote / rollback that must not happen (the message says why)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Row:
    id: str
    text: str
    label: str

    @property
    def sha256(self) -> str:
        return row_hash(self.text, self.label)


def read_rows(path: Path) -> list[Row]:
    """The rows file: CSV with ``id,text,label`` (read verbatim: no cleaning, or drift would hide)."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: rows file needs columns id,text,label (missing {sorted(missing)})")
        return [Row(str(r["id"]), str(r["text"]), str(r["label"])) for r in reader]


def write_rows(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        writer.writerows([(r.id, r.text, r.label) for r in rows])


def rows_digest(pinned: list[dict]) -> str:
    h = hashlib.sha256()
    for r in sorted(pinned, key=lambda r: r["id"]):
        h.update(f"{r['id']}\x1f{r['sha256']}\n".encode())
    return h.hexdigest()


def row_problems(pinned: list[dict], rows: list[Row]) -> list[dict]:
    """Every way ``rows`` differ from the pinned ones (pure): [] means exactly the frozen rows."""
    want = {r["id"]: r["sha256"] for r in pinned}
    counts = Counter(r.id for r in rows)
    seen: dict[str, str] = {}
    out: list[dict] = []
    for r in rows:
        seen.setdefault(r.id, r.sha256)
    for rid, n in sorted(counts.items()):
        if n > 1:
            out.append({"kind": "duplicate_row", "id": rid, "reason": f"row {rid} appears {n} times"})
    for rid in sorted(set(want) - set(seen)):
        out.append({"kind": "missing_row", "id": rid, "reason": f"pinned row {rid} is missing"})
    for rid in sorted(set(seen) - set(want)):
        out.append({"kind": "unexpected_row", "id": rid, "reason": f"row {rid} is not in the receipt"})
    for rid in sorted(set(seen) & set(want)):
        if seen[rid] != want[rid]:
            out.append({"kind": "drifted_row", "id": rid,
                        "reason": f"row {rid} changed since the receipt was frozen (text or label)"})
    return out


# ------------------------------------------------------------------------------------------ receipt
def parse_slice(spec: str) -> tuple[str, dict]:
    """``NAME=intent_a,intent_b[@MIN_ACCURACY[/MAX_DROP]]`` -> (name, slice definition)."""
    name, _, rest = spec.partition("=")
    intents, _, bounds = rest.partition("@")
    minimum, _, drop = bounds.partition("/")
    if not name or not intents:
        raise ValueError(f"bad --slice {spec!r}: use NAME=intent[,intent...][@min_accuracy[/max_drop]]")
    return name, {"intents": [i.strip() for i in intents.split(",") if i.strip()],
                  "min_accuracy": float(minimum) if minimum else 0.0,
                  "max_drop": float(drop) if drop else 0.0}  # fmt: skip


def freeze(rows: list[Row], out_dir: Path, *, source: str, slices: dict[str, dict],
           tolerance: dict[str, float] | None = None) -> Path:
    """Write ``rows.csv`` + ``receipt.json`` into ``out_dir``; returns the receipt path."""
    problems = [p for p in row_problems([], rows) if p["kind"] == "duplicate_row"]
    if problems:
        raise DataError(f"cannot freeze duplicate row ids: {[p['id'] for p in problems[:5]]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rows(rows, out_dir / "rows.csv")
    pinned = [{"id": r.id, "sha256": r.sha256} for r in rows]
    receipt = {
        "kind": RECEIPT_KIND, "version": 1, "created_at": _now(), "source": source,
        "rows_file": "rows.csv", "n": len(rows), "rows_sha256": rows_digest(pinned),
        "tolerance": {"macro_f1": 0.0, "precision_bound": 0.0, **(tolerance or {})},
        "slices": slices, "rows": pinned,
    }  # fmt: skip
    path = out_dir / "receipt.json"
    _write_atomic(path, json.dumps(receipt, indent=1) + "\n")
    return path


def load_receipt(path: Path) -> dict:
    try:
        receipt = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read receipt {path}: {exc}") from None
    if receipt.get("kind") != RECEIPT_KIND:
        raise DataError(f"{path} is not a release receipt")
    if rows_digest(receipt["rows"]) != receipt.get("rows_sha256"):
        raise DataError(f"{path}: the pinned rows do not match their recorded digest (receipt edited)")
    return receipt


# --------------------------------------------------------------------------------------- evaluation
@dataclass
class BundleScore:
    """One bundle on the receipt's rows."""

    path: str
    version: str
    thresholds_source: str
    accuracy: float
    macro_f1: float
    auto_n: int
    auto_correct: int
    auto_precision: float | None
    auto_precision_lower: float
    slices: dict[str, dict] = field(default_factory=dict)


def auto_thresholds(thresholds: dict, floor: float) -> tuple[float | None, dict[str, float | None]]:
    """(global, per-intent) auto-resolve thresholds as the router applies them: Settings floor, None=never."""
    def stricter(v: Any) -> float | None:
        return None if v is None else max(float(v), floor)

    glob = stricter(thresholds.get("auto_resolve", floor))
    per = {k: stricter(v.get("auto_resolve", glob)) for k, v in (thresholds.get("per_intent") or {}).items()}
    return glob, per


def auto_mask(preds: list[str], conf: np.ndarray, thresholds: dict, floor: float,
              ood: np.ndarray | None = None) -> np.ndarray:
    """Which rows this bundle alone would auto-resolve (calibrated thresholds only; OOD guard applied)."""
    if thresholds.get("source") != "calibrated":
        return np.zeros(len(preds), dtype=bool)
    glob, per = auto_thresholds(thresholds, floor)
    limits = [per.get(p, glob) for p in preds]
    mask = np.array([t is not None and c > t for c, t in zip(conf, limits, strict=True)], dtype=bool)
    guard = thresholds.get("ood") or {}
    if ood is not None and guard.get("max") is not None:
        mask &= np.asarray(ood) <= float(guard["max"])
    return mask


def score_bundle(path: Path, texts: list[str], labels: list[str], slices: dict[str, dict],
                 floor: float) -> BundleScore:
    """Serve ``texts`` (already runtime-preprocessed) through the bundle and measure what the gate needs."""
    from src.classifier.inference import IntentClassifier
    from src.classifier.metrics import classification_summary, clopper_pearson_lower, softmax

    clf = IntentClassifier.load(path)
    logits, emb = clf.outputs(texts)
    probs = softmax(np.asarray(logits, dtype=np.float64), clf.temperature)
    preds = [clf.labels[i] for i in probs.argmax(axis=1)]
    conf = probs.max(axis=1)
    ood = None
    if clf.ood_score_name:
        ood = clf.ood_scores(logits, emb).get(clf.ood_score_name)
    summary = classification_summary(labels, preds, sorted(set(labels) | set(preds)))
    correct = np.array([p == t for p, t in zip(preds, labels, strict=True)], dtype=bool)
    auto = auto_mask(preds, conf, clf.thresholds, floor, ood)
    n_auto, n_ok = int(auto.sum()), int((auto & correct).sum())
    per_slice = {}
    for name, spec in slices.items():
        members = np.array([t in set(spec.get("intents") or []) for t in labels], dtype=bool)
        n = int(members.sum())
        per_slice[name] = {"n": n, "accuracy": float(correct[members].mean()) if n else None}
    return BundleScore(
        path=str(path), version=clf.version, thresholds_source=str(clf.thresholds.get("source")),
        accuracy=summary["accuracy"], macro_f1=summary["macro_f1"], auto_n=n_auto, auto_correct=n_ok,
        auto_precision=(n_ok / n_auto) if n_auto else None,
        auto_precision_lower=clopper_pearson_lower(n_ok, n_auto), slices=per_slice,
    )  # fmt: skip


def _hold(kind: str, reason: str) -> dict:
    return {"kind": kind, "reason": reason}


def judge(candidate: BundleScore, current: BundleScore, slices: dict[str, dict],
          tolerance: dict[str, float]) -> list[dict]:
    """The holds a candidate earns against the serving bundle on the same rows (pure)."""
    holds: list[dict] = []
    if candidate.thresholds_source != "calibrated":
        holds.append(_hold("uncalibrated", f"candidate thresholds are {candidate.thresholds_source}, not "
                           "calibrated for its weights: it could never auto-resolve (run the calibration)"))
    for name, spec in slices.items():
        cand, cur = candidate.slices.get(name, {}), current.slices.get(name, {})
        if not cand.get("n"):
            holds.append(_hold("required_slice", f"required slice {name!r} has no rows to judge"))
            continue
        minimum, drop = float(spec.get("min_accuracy", 0.0)), float(spec.get("max_drop", 0.0))
        acc = cand["accuracy"]
        if acc < minimum:
            holds.append(_hold("required_slice", f"required slice {name!r}: accuracy {acc:.4f} < required "
                               f"{minimum:.4f} (n={cand['n']})"))
        elif cur.get("accuracy") is not None and acc < cur["accuracy"] - drop - 1e-12:
            holds.append(_hold("required_slice", f"required slice {name!r}: accuracy {acc:.4f} < serving "
                               f"{cur['accuracy']:.4f} - allowed drop {drop:.4f}"))
    tol = float(tolerance.get("macro_f1", 0.0))
    if candidate.macro_f1 < current.macro_f1 - tol - 1e-12:
        holds.append(_hold("macro_f1", f"macro-F1 {candidate.macro_f1:.4f} < serving {current.macro_f1:.4f}"
                           + (f" - tolerance {tol:.4f}" if tol else "")))
    tol = float(tolerance.get("precision_bound", 0.0))
    if candidate.auto_precision_lower < current.auto_precision_lower - tol - 1e-12:
        holds.append(_hold("auto_resolve_precision", (
            f"auto-resolve precision lower bound {candidate.auto_precision_lower:.4f} "
            f"({candidate.auto_correct}/{candidate.auto_n} correct) < serving "
            f"{current.auto_precision_lower:.4f} ({current.auto_correct}/{current.auto_n})")))
    return holds


def run_gate(receipt_path: Path, candidate: Path, current: Path, *, rows_path: Path | None = None,
             settings: Any = None) -> dict:
    """The gate report (``passed``, ``holds`` with reasons, both bundles' numbers, provenance)."""
    from src.classifier.runtime_text import runtime_view
    from src.config import get_settings
    from src.system_info import git_commit

    settings = settings or get_settings()
    receipt = load_receipt(receipt_path)
    rows_file = rows_path or (receipt_path.parent / receipt["rows_file"])
    rows = read_rows(rows_file)
    report: dict[str, Any] = {
        "kind": "triage-release-gate", "created_at": _now(), "commit": git_commit(),
        "receipt": {"path": str(receipt_path), "rows_file": str(rows_file), "n": receipt["n"],
                    "rows_sha256": receipt["rows_sha256"], "source": receipt.get("source")},
        "candidate": {"path": str(candidate)}, "current": {"path": str(current)},
    }  # fmt: skip
    problems = row_problems(receipt["rows"], rows)
    if problems:
        report["holds"] = problems[:50]
        report["row_problems"] = dict(Counter(p["kind"] for p in problems))
        report["passed"] = False
        return report
    view = runtime_view([r.text for r in rows], settings)
    labels = [rows[i].label for i in view.kept]
    slices = receipt.get("slices") or {}
    floor = settings.auto_threshold
    cand = score_bundle(candidate, view.texts, labels, slices, floor)
    cur = score_bundle(current, view.texts, labels, slices, floor)
    holds = judge(cand, cur, slices, receipt.get("tolerance") or {})
    report.update({"candidate": asdict(cand), "current": asdict(cur), "holds": holds, "passed": not holds,
                   "n_scored": len(view.texts), "n_rejected_by_preprocessing": view.n_dropped})
    return report


def render_gate(report: dict) -> str:
    verdict = "PROMOTE" if report["passed"] else "HOLD"
    r = report["receipt"]
    lines = [f"# Release gate: {verdict}", "",
             f"- receipt: `{r['path']}` ({r['n']} pinned rows, sha256 {r['rows_sha256'][:12]})",
             f"- rows: {r.get('source')}",
             f"- commit {report.get('commit')}, {report['created_at']}", ""]  # fmt: skip
    cand, cur = report["candidate"], report["current"]
    if "macro_f1" in cand:
        lines += ["| | serving | candidate |", "|---|---|---|",
                  f"| bundle | `{cur['version']}` | `{cand['version']}` |",
                  f"| accuracy | {cur['accuracy']:.4f} | {cand['accuracy']:.4f} |",
                  f"| macro-F1 | {cur['macro_f1']:.4f} | {cand['macro_f1']:.4f} |",
                  f"| auto-resolved (correct/n) | {cur['auto_correct']}/{cur['auto_n']} | "
                  f"{cand['auto_correct']}/{cand['auto_n']} |",
                  f"| auto-resolve precision, 95% lower bound | {cur['auto_precision_lower']:.4f} | "
                  f"{cand['auto_precision_lower']:.4f} |"]  # fmt: skip
        for name in cand.get("slices", {}):
            a, b = cur["slices"].get(name, {}), cand["slices"][name]
            fmt = lambda s: "n/a" if s.get("accuracy") is None else f"{s['accuracy']:.4f} (n={s['n']})"  # noqa: E731
            lines.append(f"| slice {name} accuracy | {fmt(a)} | {fmt(b)} |")
        lines.append("")
    if report["holds"]:
        lines += ["Held:", ""] + [f"- **{h['kind']}**: {h['reason']}" for h in report["holds"]]
    else:
        lines.append("No hold: the candidate may be promoted.")
    return "\n".join(lines) + "\n"


def write_gate(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, json.dumps(report, indent=1, default=str) + "\n")
    _write_atomic(out.with_suffix(".md"), render_gate(report))


# ------------------------------------------------------------------------------ promote / rollback
def _history(releases: Path) -> list[dict]:
    path = releases / HISTORY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _append_history(releases: Path, entry: dict) -> None:
    items = _history(releases) + [entry]
    _write_atomic(releases / HISTORY_FILE, json.dumps(items, indent=1) + "\n")


def _swap_link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` in one rename (atomic on POSIX): readers see old or new, never none."""
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.tmp")
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def serving_version(link: Path) -> str | None:
    from src.classifier.bundle import load_bundle_meta

    return load_bundle_meta(link)["bundle_version"] if link.exists() else None


def _adopt(link: Path, releases: Path, log) -> None:
    """A serving path that is a plain directory becomes ``releases/<version>`` + a symlink (once)."""
    from src.classifier.bundle import load_bundle_meta

    version = load_bundle_meta(link)["bundle_version"]
    target = releases / version
    if target.exists():
        raise ReleaseError(f"{link} is a directory and {target} exists already: move one of them away")
    os.rename(link, target)
    os.symlink(os.path.relpath(target, link.parent), link)
    log(f"{link} was a plain directory: moved to {target} and linked (one-time conversion)")


def promote(candidate: Path, gate_report: Path, *, link: Path = DEFAULT_LINK, releases: Path | None = None,
            log=print) -> dict:
    """Install a candidate that passed the gate against what is served now; returns the history entry."""
    from src.classifier.bundle import load_bundle_meta

    releases = releases or link.parent / "releases"
    report = json.loads(gate_report.read_text(encoding="utf-8"))
    if not report.get("passed"):
        reasons = "; ".join(h["reason"] for h in report.get("holds", [])[:5])
        raise ReleaseError(f"the gate held this candidate: {reasons}")
    version = load_bundle_meta(candidate)["bundle_version"]
    if report["candidate"].get("version") != version:
        raise ReleaseError(f"the gate report is for {report['candidate'].get('version')}, the candidate is "
                           f"{version}: run the gate on this candidate")
    served = serving_version(link)
    if served is not None and served != report["current"].get("version"):
        raise ReleaseError(f"the gate compared against {report['current'].get('version')} but {served} is "
                           "served now: run the gate again")
    releases.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():
        _adopt(link, releases, log)
    target = releases / version
    if not target.exists():
        tmp = releases / f".{version}.{uuid.uuid4().hex}.tmp"
        shutil.copytree(candidate, tmp, symlinks=False)
        load_bundle_meta(tmp)  # a bad copy never becomes a release
        os.rename(tmp, target)
    _swap_link(link, target)
    entry = {"action": "promote", "from": served, "to": version, "at": _now(),
             "gate_report": str(gate_report)}
    _append_history(releases, entry)
    log(f"serving {version} at {link} (was {served}); restart the service / workers to load it")
    return entry


def rollback(*, link: Path = DEFAULT_LINK, releases: Path | None = None, log=print) -> dict:
    """Serve again the bundle that was served before the current one was promoted."""
    releases = releases or link.parent / "releases"
    served = serving_version(link)
    before = next((e["from"] for e in reversed(_history(releases))
                   if e.get("action") == "promote" and e.get("to") == served), None)  # fmt: skip
    if before is None:
        raise ReleaseError(f"no earlier bundle recorded for {served} in {releases / HISTORY_FILE}")
    target = releases / before
    if not target.is_dir():
        raise ReleaseError(f"the earlier bundle {before} is not in {releases}")
    _swap_link(link, target)
    entry = {"action": "rollback", "from": served, "to": before, "at": _now()}
    _append_history(releases, entry)
    log(f"serving {before} at {link} again (was {served}); restart the service / workers to load it")
    return entry


# ------------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m src.classifier.release",
                                description="Frozen receipts, the release gate, promote and rollback.")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("freeze", help="pin the rows a release is judged on")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-bundle", type=Path, help="use this bundle's frozen split (see --part)")
    src.add_argument("--rows", type=Path, help="a labelled file; ids from its id column, else row numbers")
    f.add_argument("--part", default="test", choices=["test", "calibration", "val"])
    f.add_argument("--out", required=True, type=Path, help="directory for receipt.json + rows.csv")
    f.add_argument("--slice", action="append", default=[],
                   help="required slice NAME=intent[,intent...][@min_accuracy[/max_drop]] (repeatable)")
    f.add_argument("--macro-f1-tolerance", type=float, default=0.0)
    f.add_argument("--precision-bound-tolerance", type=float, default=0.0)
    g = sub.add_parser("gate", help="judge a candidate against the serving bundle on a receipt")
    g.add_argument("--receipt", required=True, type=Path)
    g.add_argument("--candidate", required=True, type=Path)
    g.add_argument("--current", type=Path, help="serving bundle (default: TRIAGE_MODEL_DIR)")
    g.add_argument("--rows", type=Path, help="rows file (default: the one next to the receipt)")
    g.add_argument("--out", type=Path, help="report path (default: CANDIDATE/gate.json; .md beside it)")
    pr = sub.add_parser("promote", help="serve a candidate that passed the gate (atomic swap)")
    pr.add_argument("--candidate", required=True, type=Path)
    pr.add_argument("--gate-report", required=True, type=Path)
    for s in (pr, sub.add_parser("rollback", help="serve the previous bundle again"),
              sub.add_parser("status", help="what is served and the release history")):
        s.add_argument("--link", type=Path, default=DEFAULT_LINK, help="the serving path (TRIAGE_MODEL_DIR)")
        s.add_argument("--releases", type=Path, help="where releases are kept (default: LINK/../releases)")
    return p


def _freeze_cmd(args: argparse.Namespace) -> int:
    if args.from_bundle:
        from src.classifier.data import load_split

        df, description = load_split(args.from_bundle, args.part)
        triples = zip(df["id"], df["text"], df["label"], strict=True)
        rows = [Row(str(i), str(t), str(lab)) for i, t, lab in triples]
        source = f"{description} of bundle {args.from_bundle}"
    else:
        from src.classifier.data import load_labelled

        df = load_labelled(args.rows)
        ids = _ids_column(args.rows) or [f"r{i:06d}" for i in range(len(df))]
        rows = [Row(i, t, lab) for i, t, lab in zip(ids, df["text"], df["label"], strict=True)]
        source = str(args.rows)
    slices = dict(parse_slice(s) for s in args.slice)
    tol = {"macro_f1": args.macro_f1_tolerance, "precision_bound": args.precision_bound_tolerance}
    path = freeze(rows, args.out, source=source, slices=slices, tolerance=tol)
    print(f"froze {len(rows)} rows ({source}) with {len(slices)} required slices: {path}")
    return 0


def _ids_column(path: Path) -> list[str] | None:
    from src.classifier.data import _read_file

    df = _read_file(Path(path))
    return [str(v) for v in df["id"]] if "id" in df.columns else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from src.classifier.types import BundleError
    from src.config import get_settings

    try:
        if args.cmd == "freeze":
            return _freeze_cmd(args)
        if args.cmd == "gate":
            current = args.current or get_settings().model_dir
            report = run_gate(args.receipt, args.candidate, Path(current), rows_path=args.rows)
            out = args.out or args.candidate / "gate.json"
            write_gate(report, out)
            print(render_gate(report))
            print(f"wrote {out} and {out.with_suffix('.md')}")
            return 0 if report["passed"] else 1
        if args.cmd == "promote":
            promote(args.candidate, args.gate_report, link=args.link, releases=args.releases)
            return 0
        if args.cmd == "rollback":
            rollback(link=args.link, releases=args.releases)
            return 0
        releases = args.releases or args.link.parent / "releases"
        print(f"{args.link} -> {os.readlink(args.link) if args.link.is_symlink() else '(not a symlink)'}: "
              f"{serving_version(args.link)}")
        for e in _history(releases)[-10:]:
            print(f"  {e['at']} {e['action']}: {e.get('from')} -> {e['to']}")
        return 0
    except (DataError, BundleError, ReleaseError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
