"""The model lifecycle end to end, on real (tiny) bundles, the real API and the real SQLite audit store.

1. A serving bundle is trained by the real pipeline; tickets go in through ``POST /v1/tickets``.
2. Two reviewers correct the intent of tickets it gets wrong through ``POST /v1/review/{id}`` (one is
   also marked a bad example), and ``python -m src.classifier.retrain`` builds a candidate from the
   original data plus those corrections: the candidate predicts the corrected intent, the server did not.
3. The candidate shadows live traffic (``TRIAGE_SHADOW_MODEL_DIR``) and ``src.graph.shadow report``
   compares both on the reviewers' outcomes.
4. The release gate on a frozen receipt promotes the candidate; ``promote`` / ``rollback`` swap the
   serving path atomically. Deliberately worse candidates are held, each with its reason.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from src.classifier import release
from src.classifier.bundle import load_bundle_meta, update_bundle
from src.classifier.feedback import main as feedback_main
from src.classifier.feedback import read_feedback
from src.classifier.inference import IntentClassifier
from src.classifier.retrain import main as retrain_main
from src.config import Settings, get_settings
from src.graph.shadow import main as shadow_main
from tests.classifier.classifier_serving_fixtures import refinalise
from tests.graph.conftest import GRAPH_CORES as CORES
from tests.graph.conftest import PREFIXES

pytestmark = pytest.mark.slow

# A phrasing the training data never has: reviewers will say what these tickets are.
NEW_PHRASING = [
    "the same payment was taken from my card twice", "you billed me two times for one purchase",
    "there are two identical charges on my statement", "my bank shows a duplicate charge from your shop",
    "i see the amount deducted twice this month", "why was my account debited twice for one item",
    "the charge appears twice on my credit card", "you took the money two times from my account",
]
BAD = "my bank shows the money twice lol whatever"
QUIET = {"log": lambda _m: None}


def _env(root: Path) -> dict[str, str]:
    return {"TRIAGE_SQLITE_PATH": str(root / "audit.db"), "TRIAGE_OUTBOX_DIR": str(root / "outbox"),
            "TRIAGE_CHECKPOINT_SQLITE_PATH": str(root / "ckpt.db"), "TRIAGE_DATA_DIR": str(root)}


def _runtime_settings(root: Path, model: Path, shadow: Path | None = None) -> Settings:
    return Settings(
        data_dir=root, sqlite_path=root / "audit.db", checkpoint_sqlite_path=root / "ckpt.db",
        outbox_dir=root / "outbox", service_factory="tests.lifecycle.lifecycle_service:build",
        service_workers=1, requeue_after_s=3600.0, node_timeout_s=30.0, model_dir=model,
        shadow_model_dir=shadow, auto_threshold=0.9999, classifier_threads=1,
    )  # fmt: skip


def _review_all(root: Path, model: Path, tickets: list[tuple[str, str, dict]], shadow: Path | None = None
                ) -> list[dict]:
    """Submit each (id, text, review body) through the API, wait for the decision, review it."""
    from src.api.app import create_app
    from src.api.auth import generate_key, hash_secret
    from src.api.runtime import Runtime

    rt = Runtime(_runtime_settings(root, model, shadow))
    decisions = []
    with TestClient(create_app(runtime=rt)) as client:
        key = generate_key()
        rt.store.add_key(key.key_id, "lead", key.salt, hash_secret(key.secret, key.salt, rt.pepper))
        h = {"Authorization": f"Bearer {key.full}"}
        for source_id, text, body in tickets:
            resp = client.post("/v1/tickets?wait=60", json={"channel": "chat", "id": source_id, "text": text},
                               headers=h)
            assert resp.status_code == 200, resp.text
            decision = resp.json()["decision"]
            assert decision["status"] == "pending_review", decision
            decisions.append(decision)
            done = client.post(f"/v1/review/{decision['ticket_id']}", json=body, headers=h)
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "completed"
    return decisions


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Serving bundle -> reviews through the API -> retrained candidate (the expensive part, once)."""
    from src.classifier.train import TrainConfig, train

    root = tmp_path_factory.mktemp("lifecycle")
    data = root / "intents.csv"
    rows = [{"text": f"{p} {c}{s}", "label": label} for label, cores in CORES.items()
            for p, c, s in itertools.product(PREFIXES, cores, ("", " today"))]
    pd.DataFrame(rows).to_csv(data, index=False)
    current = root / "current"
    train(TrainConfig(data=[str(data)], out=str(current), base_model="minilm", epochs=1, batch_size=16,
                      max_length=32, threads=1, progress=False, seed=7, export_onnx=False, min_macro_f1=0.0,
                      min_accuracy=0.0, min_per_class_f1=0.0), **QUIET)  # fmt: skip
    served = IntentClassifier.load(current)
    # the intent the serving model finds least likely for the new phrasing: what reviewers will say it is
    target = served.labels[int(served.predict_proba(NEW_PHRASING).sum(axis=0).argmin())]
    reviews = [(f"c-{i}", text, {"action": "accept", "intent": target, "by": "ana" if i % 2 else "bo"})
               for i, text in enumerate(NEW_PHRASING)]
    reviews.append(("c-bad", BAD, {"action": "accept", "intent": target, "by": "ana", "bad_example": True}))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _env(root).items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        decisions = _review_all(root, current, reviews)
        assert feedback_main(["--out", str(root / "feedback.csv"), "--include-bad"]) == 0
        candidate = root / "candidate"
        code = retrain_main(["--out", str(candidate), "--current", str(current), "--epochs", "4",
                             "--lr", "5e-3", "--threads", "1", "--no-onnx", "--no-progress",
                             "--min-macro-f1", "0", "--min-accuracy", "0", "--min-per-class-f1", "0"])
        get_settings.cache_clear()
    assert code == 0
    return {"root": root, "data": data, "current": current, "candidate": candidate, "target": target,
            "decisions": decisions}  # fmt: skip


def test_corrections_through_the_review_api_change_the_candidate(world: dict) -> None:
    target, root = world["target"], world["root"]
    served_before = [d["intent"] for d in world["decisions"][: len(NEW_PHRASING)]]
    assert served_before.count(target) <= 2  # the server got (almost) all of them wrong
    rows = read_feedback(root / "feedback.csv")
    assert {r.reviewer for r in rows} == {"lead/ana", "lead/bo"}
    assert all(r.source == "corrected" and r.label == target and r.bundle_version for r in rows)
    assert [r.ticket_id for r in rows if r.bad_example] == ["chat:c-bad"]
    report = json.loads((world["candidate"] / "retrain" / "report.json").read_text())
    assert report["merge"]["n_used"] == len(NEW_PHRASING)  # 4 per reviewer: within both caps
    assert report["merge"]["dropped"] == {"marked bad example": 1}
    learnt = report["learnt"]
    assert learnt["n"] == len(NEW_PHRASING) and learnt["current"] <= 2
    assert learnt["candidate"] >= len(NEW_PHRASING) - 2, learnt  # the next candidate learnt them
    candidate = IntentClassifier.load(world["candidate"])
    assert sum(p.label == target for p in candidate.predict(NEW_PHRASING)) == learnt["candidate"]
    # corrections only trained: the evaluation rows are the serving bundle's, unchanged
    cur_manifest = json.loads((world["current"] / "split_manifest.json").read_text())
    cand_manifest = json.loads((world["candidate"] / "split_manifest.json").read_text())
    for part in ("val", "calibration", "test"):
        assert [r["sha256"] for r in cand_manifest[part]] == [r["sha256"] for r in cur_manifest[part]]
    assert len(cand_manifest["train"]) == len(cur_manifest["train"]) + len(NEW_PHRASING)
    ev = json.loads((world["candidate"] / "eval.json").read_text())
    assert {"keyword_rules", "tfidf_logreg"} <= set(ev["baselines"]) and "failure_clusters" in ev
    assert "## Baselines and failure clusters" in (world["candidate"] / "eval.md").read_text()


def test_gate_promotes_the_candidate_then_rollback_restores(world: dict, tmp_path: Path) -> None:
    receipts = tmp_path / "receipt"
    assert release.main(["freeze", "--from-bundle", str(world["current"]), "--out", str(receipts),
                         "--slice", "passwords=recover_password@0.5/0.1"]) == 0  # fmt: skip
    gate_json = tmp_path / "gate.json"
    code = release.main(["gate", "--receipt", str(receipts / "receipt.json"), "--candidate",
                         str(world["candidate"]), "--current", str(world["current"]),
                         "--out", str(gate_json)])
    report = json.loads(gate_json.read_text())
    assert code == 0 and report["passed"], report["holds"]
    assert report["candidate"]["macro_f1"] >= report["current"]["macro_f1"]
    assert "PROMOTE" in gate_json.with_suffix(".md").read_text()
    # the serving path starts as a plain directory holding the current bundle
    link = tmp_path / "models" / "intent"
    link.parent.mkdir()
    import shutil

    shutil.copytree(world["current"], link)
    cur_version = load_bundle_meta(world["current"])["bundle_version"]
    cand_version = load_bundle_meta(world["candidate"])["bundle_version"]
    assert release.main(["promote", "--candidate", str(world["candidate"]), "--gate-report", str(gate_json),
                         "--link", str(link)]) == 0  # fmt: skip
    assert link.is_symlink() and release.serving_version(link) == cand_version
    assert (tmp_path / "models" / "releases" / cur_version / "bundle.json").is_file()
    assert IntentClassifier.load(link).version == cand_version
    assert release.main(["promote", "--candidate", str(world["candidate"]), "--gate-report", str(gate_json),
                         "--link", str(link)]) == 2  # the gate compared against what is no longer served
    assert release.main(["rollback", "--link", str(link)]) == 0
    assert release.serving_version(link) == cur_version
    history = json.loads((tmp_path / "models" / "releases" / "history.json").read_text())
    assert [(e["action"], e["from"], e["to"]) for e in history] == [
        ("promote", cur_version, cand_version), ("rollback", cand_version, cur_version)]
    assert release.main(["rollback", "--link", str(link)]) == 2  # nothing served before the first bundle
    assert not [p for p in link.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def _edited_rows(src: Path, dest: Path, edit) -> Path:
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [rows[0], *edit(rows[1:])]
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "rows.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return dest / "rows.csv"


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dest))


def test_gate_holds_each_kind_of_worse_candidate(world: dict, tmp_path: Path) -> None:
    receipt_dir = tmp_path / "receipt"
    receipt = release.freeze(
        release.read_rows(_frozen_rows(world, tmp_path)), receipt_dir, source="current test split",
        slices={"swapped": {"intents": ["recover_password"], "min_accuracy": 0.5, "max_drop": 0.1}})
    rows = receipt_dir / "rows.csv"
    cand, cur = world["candidate"], world["current"]

    def kinds(report: dict) -> set[str]:
        return {h["kind"] for h in report["holds"]}

    # the rows are not the pinned ones: held before anything is compared
    edits = {
        "missing_row": lambda r: r[1:],
        "unexpected_row": lambda r: [*r, ["new-id", "please cancel my order", "cancel_order"]],
        "duplicate_row": lambda r: [*r, r[0]],
        "drifted_row": lambda r: [[*r[0][:2], "get_refund" if r[0][2] == "track_order" else "track_order"],
                                  *r[1:]],
    }  # fmt: skip
    for kind, edit in edits.items():
        report = release.run_gate(receipt, cand, cur, rows_path=_edited_rows(rows, tmp_path / kind, edit))
        assert not report["passed"] and kinds(report) == {kind}, report["holds"]
        assert "macro_f1" not in report["candidate"]  # nothing scored on rows that are not the pinned ones
    # a candidate whose head was mislabelled (two intents swapped): worse macro-F1 and a missed slice
    swapped = _copy(cand, tmp_path / "swapped")
    labels = json.loads((swapped / "labels.json").read_text())["labels"]
    i, j = labels.index("recover_password"), labels.index("cancel_order")
    labels[i], labels[j] = labels[j], labels[i]
    (swapped / "labels.json").write_text(json.dumps({"labels": labels}))
    refinalise(swapped)
    report = release.run_gate(receipt, swapped, cur)
    assert {"macro_f1", "required_slice"} <= kinds(report), report["holds"]
    assert all(h["reason"] for h in report["holds"])
    # thresholds calibrated for other weights (the temperature changed afterwards): never auto-resolves
    stale = _copy(cand, tmp_path / "stale")
    temperature = json.loads((stale / "calibration.json").read_text())["temperature"]
    update_bundle(stale, temperature=temperature * 1.5)
    assert "uncalibrated" in kinds(release.run_gate(receipt, stale, cand))
    # both auto-resolve above the same threshold; the mislabelled one auto-resolves wrong answers
    loose = Settings(auto_threshold=0.3)
    precise, sloppy = _copy(cand, tmp_path / "precise"), _copy(swapped, tmp_path / "sloppy")
    for bundle in (precise, sloppy):
        th = json.loads((bundle / "thresholds.json").read_text())
        assert th["source"] == "calibrated"
        th.update(auto_resolve=0.3, suggest=0.2, per_intent={})
        update_bundle(bundle, thresholds=th)
    report = release.run_gate(receipt, sloppy, precise, settings=loose)
    assert "auto_resolve_precision" in kinds(report), report["holds"]
    assert report["current"]["auto_n"] > 0
    assert report["candidate"]["auto_correct"] < report["candidate"]["auto_n"]
    # and the real candidate against the current bundle on the same receipt: promoted
    assert release.run_gate(receipt, cand, cur)["passed"]


def _frozen_rows(world: dict, tmp_path: Path) -> Path:
    from src.classifier.data import load_split

    df, _ = load_split(world["current"], "test")
    out = tmp_path / "pinned.csv"
    release.write_rows([release.Row(str(i), t, lab) for i, t, lab in zip(df["id"], df["text"], df["label"],
                                                                        strict=True)], out)  # fmt: skip
    return out


def test_shadow_mode_scores_without_acting_and_reports(world: dict) -> None:
    root = world["root"]
    target = world["target"]
    tickets = [(f"s-{i}", text, {"action": "accept", "intent": target, "by": "cy"})
               for i, text in enumerate(NEW_PHRASING)]
    other = next(label for label in CORES if label != target)  # tickets of an intent it knows well
    tickets += [(f"s-ok-{i}", f"{p} {CORES[other][i]}", {"action": "accept", "intent": other, "by": "cy"})
                for i, p in enumerate(PREFIXES[:3])]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _env(root).items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        decisions = _review_all(root, world["current"], tickets, shadow=world["candidate"])
        out = root / "shadow-report"
        assert shadow_main(["report", "--out", str(out)]) == 0
        get_settings.cache_clear()
    served = load_bundle_meta(world["current"])["bundle_version"]
    report = json.loads((out / "shadow.json").read_text())
    assert report["candidate_version"] == load_bundle_meta(world["candidate"])["bundle_version"]
    assert report["n_shadow"] == len(tickets) and report["n_outcomes"] == len(tickets)
    overall = report["overall"]
    assert overall["candidate"]["correct"] > overall["serving"]["correct"]
    assert not overall["candidate"]["threshold_move_allowed"]  # 11 outcomes < 50: no threshold moves
    assert report["by_intent"][target]["candidate"]["n"] == len(NEW_PHRASING)
    assert "*too small*" in (out / "shadow.md").read_text()
    # the decisions are the serving bundle's: the candidate never acted
    from src.audit.sqlite_store import SqliteAuditStore

    store = SqliteAuditStore(root / "audit.db")
    rows = [store.get_decision(d["ticket_id"]) for d in decisions]
    assert {r["bundle_version"] for r in rows} == {served}
    assert [r["intent"] for r in rows] == [d["intent"] for d in decisions]
    assert np.mean([r["intent"] == target for r in rows[: len(NEW_PHRASING)]]) <= 0.25
    assert os.environ.get("TRIAGE_SHADOW_MODEL_DIR") is None
