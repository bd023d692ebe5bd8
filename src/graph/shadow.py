"""Shadow mode: a candidate bundle scores live tickets beside the serving one, without acting.

With ``TRIAGE_SHADOW_MODEL_DIR`` set, every ticket the graph audits is also classified by the
candidate on the same masked text; the candidate's intent, probability and the route it *would* have
taken (same inputs, same caps, its own calibrated thresholds) go to ``shadow_scores`` next to the
audit log. Nothing the candidate says reaches the ticket: the write happens after the decision is
recorded, any failure is swallowed (logged), and a replay writes nothing twice.

``python -m src.graph.shadow report --out DIR`` compares both bundles on *human-confirmed* outcomes
(reviewers' corrections and confirmations, spot checks; ``src.classifier.feedback``) per confidence
band and per intent, with exact 95 % intervals, and marks every bucket with fewer than
``MIN_OUTCOMES`` (50) outcomes as too small to move a threshold on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.audit.db import Database

MIN_OUTCOMES = 50
BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.0001))
COLUMNS = ("ticket_id", "candidate_version", "serving_version", "serving_intent", "serving_confidence",
           "serving_route", "candidate_intent", "candidate_confidence", "candidate_route",
           "created_at")  # fmt: skip
WHO = ("serving", "candidate")


class ShadowStore:
    """``shadow_scores`` (migration v7) on the audit database: one row per (ticket, candidate)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, row: dict[str, Any]) -> None:
        ph = self.db.placeholder
        values = [row.get(c) for c in COLUMNS]
        created = values[-1] or datetime.now(timezone.utc)
        values[-1] = created if self.db.dialect == "postgres" else created.isoformat()
        self.db.execute(
            f"INSERT INTO shadow_scores ({', '.join(COLUMNS)}) VALUES ({', '.join([ph] * len(COLUMNS))})"
            " ON CONFLICT (ticket_id, candidate_version) DO NOTHING",
            tuple(values),
        )

    def rows(self, candidate_version: str | None = None) -> list[dict[str, Any]]:
        where, params = "", ()
        if candidate_version is not None:
            where, params = f" WHERE candidate_version = {self.db.placeholder}", (candidate_version,)
        query = f"SELECT {', '.join(COLUMNS)} FROM shadow_scores{where} ORDER BY created_at, ticket_id"
        out = []
        for r in self.db.fetchall(query, params):
            item = dict(zip(COLUMNS, r, strict=True))
            if isinstance(item["created_at"], datetime):
                item["created_at"] = item["created_at"].isoformat()
            out.append(item)
        return out


class ShadowScorer:
    """Classify a graph state's ticket with the candidate and store what it would have done."""

    def __init__(self, classifier: Any, store: ShadowStore) -> None:
        self.classifier = classifier
        self.store = store
        self.version = classifier.version

    def would_route(self, state: dict[str, Any], deps: Any, pred: Any) -> str:
        """The route the graph would have taken with the candidate's prediction and thresholds."""
        from src.graph.confidence import score
        from src.graph.nodes import confidence_inputs

        inputs = confidence_inputs(state, deps).model_copy(update={
            "intent": pred.label, "probability": pred.confidence, "margin": pred.margin,
            "entropy": pred.entropy, "ood_score": pred.ood_score, "classifier_valid": pred.valid,
        })  # fmt: skip
        thresholds = dataclasses.replace(deps, classifier=self.classifier).thresholds()
        return score(inputs, thresholds).route

    def observe(self, state: dict[str, Any], deps: Any) -> None:
        """Never raises and never touches the state: a shadow failure is only logged."""
        try:
            text = (state.get("pre") or {}).get("masked_text") or ""
            if not text.strip():
                return
            pred = self.classifier.predict([text])[0]
            serving = state.get("prediction") or {}
            self.store.record({
                "ticket_id": state["ticket_id"], "candidate_version": self.version,
                "serving_version": getattr(deps.classifier, "version", None),
                "serving_intent": serving.get("label"), "serving_confidence": serving.get("confidence"),
                "serving_route": (state.get("score") or {}).get("route"),
                "candidate_intent": pred.label, "candidate_confidence": float(pred.confidence),
                "candidate_route": self.would_route(state, deps, pred) if pred.valid else "escalate",
            })  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the candidate must never affect a live ticket
            print(f"triage: shadow scoring failed for {state.get('ticket_id')}: {exc}", file=sys.stderr)


def load_shadow(settings: Any, audit: Any, notes: list[str]) -> ShadowScorer | None:
    """The candidate named by ``TRIAGE_SHADOW_MODEL_DIR`` (None, with a startup note, if unusable)."""
    if not settings.shadow_model_dir:
        return None
    from src.classifier.inference import IntentClassifier

    try:
        clf = IntentClassifier.load(settings.shadow_model_dir, threads=settings.classifier_threads)
        scorer = ShadowScorer(clf, ShadowStore(audit.db))
    except Exception as exc:  # noqa: BLE001 - a broken candidate must not stop the service
        notes.append(f"shadow mode off: cannot load {settings.shadow_model_dir}: {exc}")
        return None
    notes.append(f"shadow mode: candidate {clf.version} scores every ticket without acting")
    return scorer


# ------------------------------------------------------------------------------------------- report
def _band(conf: float | None) -> str | None:
    if conf is None:
        return None
    for lo, hi in BANDS:
        if lo <= conf < hi:
            return f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}"
    return None


def _cell(correct: int, n: int) -> dict[str, Any]:
    from src.classifier.metrics import clopper_pearson

    lo, hi = clopper_pearson(correct, n) if n else (None, None)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "ci95": [lo, hi],
            "threshold_move_allowed": n >= MIN_OUTCOMES}  # fmt: skip


def compare(shadow_rows: list[dict], outcomes: dict[str, str]) -> dict[str, Any]:
    """Serving vs candidate on tickets with a human-confirmed intent (``outcomes``: ticket -> intent)."""
    joined = [(r, outcomes[r["ticket_id"]]) for r in shadow_rows if r["ticket_id"] in outcomes]
    # (bucket, who) -> [correct, n]; buckets: "all", "auto", ("band", name), ("intent", name)
    tally: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0, 0])
    for row, truth in joined:
        for who in WHO:
            ok = int(row[f"{who}_intent"] == truth)
            buckets: list[Any] = ["all", ("intent", truth)]
            band = _band(row[f"{who}_confidence"])
            if band is not None:
                buckets.append(("band", band))
            if row[f"{who}_route"] == "auto_resolve":
                buckets.append("auto")
            for bucket in buckets:
                tally[(bucket, who)][0] += ok
                tally[(bucket, who)][1] += 1

    def cells(bucket: Any) -> dict[str, dict]:
        return {who: _cell(*tally[(bucket, who)]) for who in WHO}

    agree = sum(r["serving_intent"] == r["candidate_intent"] for r, _ in joined)
    bands = [_band((lo + min(hi, 1.0)) / 2) for lo, hi in BANDS]
    return {
        "n_shadow": len(shadow_rows),
        "n_outcomes": len(joined),
        "agreement": agree / len(joined) if joined else None,
        "min_outcomes_per_bucket": MIN_OUTCOMES,
        "overall": cells("all"),
        "by_band": {b: cells(("band", b)) for b in bands},
        "by_intent": {i: cells(("intent", i)) for i in sorted({t for _, t in joined})},
        "would_auto_resolve": cells("auto"),
    }


def _fmt(cell: dict) -> str:
    if not cell["n"]:
        return "–"
    lo, hi = cell["ci95"]
    return f"{cell['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] n={cell['n']}"


def render(report: dict) -> str:
    lines = [f"# Shadow report: candidate {report.get('candidate_version')} vs serving", "",
             f"{report['n_shadow']} shadow-scored tickets, {report['n_outcomes']} with a human-confirmed "
             f"intent; intents agree on {report['agreement'] or 0:.3f} of those. Accuracy with exact 95% "
             f"intervals. Buckets with fewer than {report['min_outcomes_per_bucket']} outcomes are marked "
             "*too small*: no threshold moves on them.", "",
             "| bucket | serving | candidate | threshold move |", "|---|---|---|---|"]  # fmt: skip

    def row(name: str, cells: dict) -> str:
        enough = all(c["threshold_move_allowed"] for c in cells.values())
        return f"| {name} | {_fmt(cells['serving'])} | {_fmt(cells['candidate'])} | " + (
            "allowed" if enough else "*too small*") + " |"

    lines.append(row("all", report["overall"]))
    lines.append(row("would auto-resolve (precision)", report["would_auto_resolve"]))
    lines += [row(f"confidence {b}", c) for b, c in report["by_band"].items()]
    lines += [row(f"intent {i}", c) for i, c in report["by_intent"].items()]
    return "\n".join(lines) + "\n"


def shadow_report(audit: Any, candidate_version: str | None = None) -> dict[str, Any]:
    """Join the store's shadow scores with the reviewers' confirmed intents (bad examples left out)."""
    from src.classifier.feedback import load_feedback

    rows = ShadowStore(audit.db).rows(candidate_version)
    outcomes = {r.ticket_id: r.label for r in load_feedback(audit) if not r.bad_example}
    versions = sorted({r["candidate_version"] for r in rows})
    report = compare(rows, outcomes)
    report["candidate_version"] = candidate_version or ", ".join(versions) or None
    report["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.graph.shadow",
                                     description="Shadow mode report: candidate vs serving bundle on "
                                     "human-confirmed outcomes (set TRIAGE_SHADOW_MODEL_DIR to collect).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rep = sub.add_parser("report", help="write shadow.json + shadow.md")
    rep.add_argument("--out", required=True, type=Path, help="output directory")
    rep.add_argument("--candidate-version", help="only this candidate (default: all shadow rows)")
    args = parser.parse_args(argv)
    from src.audit.errors import AuditUnavailable
    from src.audit.store import open_audit_store

    try:
        audit = open_audit_store(outbox=False)
        report = shadow_report(audit, args.candidate_version)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shadow.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "shadow.md").write_text(render(report), encoding="utf-8")
    print(render(report))
    print(f"wrote {args.out / 'shadow.json'} and {args.out / 'shadow.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
