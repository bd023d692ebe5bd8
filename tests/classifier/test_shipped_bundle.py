"""The Bitext bundle committed in the repository: it loads, matches its manifest, serves, and is the default.

A fresh clone triages without training, so CI checks the committed bundle as a product artefact:
every part's sha256 against bundle.json, calibrated thresholds for this very model, the size budget,
and real predictions through the torch reference (the int8 graph is rebuilt and verified in a slow test).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.classifier.bundle import ONNX_REFERENCE, load_bundle_meta, read_parts
from src.config import SHIPPED_BUNDLE, Settings

MAX_MB = 15.0


def test_shipped_bundle_matches_its_manifest_and_is_calibrated() -> None:
    meta = load_bundle_meta(SHIPPED_BUNDLE)  # every recorded part present with its sha256
    on_disk = {p.relative_to(SHIPPED_BUNDLE).as_posix() for p in SHIPPED_BUNDLE.rglob("*") if p.is_file()}
    assert on_disk <= {*meta["files"], "bundle.json", "MODEL_CARD.md"}  # nothing unrecorded rides along
    size = sum((SHIPPED_BUNDLE / p).stat().st_size for p in on_disk) / 2**20
    assert size < MAX_MB, f"{size:.1f} MB"
    parts = read_parts(SHIPPED_BUNDLE)
    assert parts["thresholds"]["source"] == "calibrated"  # fitted for exactly these weights
    assert parts["thresholds"]["ood"]["max"] > 0
    assert meta["metrics"]["macro_f1"] >= 0.99
    manifest = json.loads((SHIPPED_BUNDLE / "split_manifest.json").read_text())
    assert meta["data_hash"] == manifest["data_hash"] and len(manifest["calibration"]) > 1000


def test_default_model_dir_is_the_shipped_bundle_without_a_local_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIAGE_MODEL_DIR", raising=False)
    assert Settings(_env_file=None).model_dir == SHIPPED_BUNDLE
    (tmp_path / "models" / "intent").mkdir(parents=True)
    (tmp_path / "models" / "intent" / "bundle.json").write_text("{}")
    assert Settings(_env_file=None).model_dir == Path("models/intent")


def test_shipped_bundle_serves_sensible_intents() -> None:
    from src.classifier.inference import IntentClassifier

    clf = IntentClassifier.load(SHIPPED_BUNDLE, backend="torch", threads=1)
    texts = {"I want to cancel my order, I changed my mind": "cancel_order",
             "how can I track where my package is right now": "track_order",
             "I forgot my password and cannot log in to my account": "recover_password"}
    preds = clf.predict(list(texts))
    assert [p.label for p in preds] == list(texts.values())
    assert all(p.ood_score is not None for p in preds)


@pytest.mark.slow
def test_int8_graph_is_rebuilt_and_verified_at_first_load(tmp_path: Path, monkeypatch) -> None:
    from src.classifier import inference

    meta = load_bundle_meta(SHIPPED_BUNDLE)
    if meta["onnx"].get("shipped", True):
        pytest.skip("the bundle ships its int8 graph")
    monkeypatch.setattr(inference, "onnx_cache_path", lambda m: tmp_path / f"{m['bundle_version']}.onnx")
    clf = inference.IntentClassifier.load(SHIPPED_BUNDLE, backend="onnx", threads=1)
    assert clf.backend.name == "onnx" and (tmp_path / f"{meta['bundle_version']}.onnx").is_file()
    sample = json.loads((SHIPPED_BUNDLE / ONNX_REFERENCE).read_text())
    agree = clf.logits(sample["texts"]).argmax(1) == np.asarray(sample["logits"]).argmax(1)
    assert agree.mean() >= 0.99
